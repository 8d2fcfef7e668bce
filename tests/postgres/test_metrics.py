"""``/metrics``' store figures on PostgreSQL (issue 11; docs/operations.md): the outbox backlog and the audit lag,
here the reads staged in ``read_audit`` that no node has chained yet (storage/postgres/read_audit.py), as SQLite
reports its unchained journal lines."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest

from fhir_server.api.metrics import _store_lines, store_figures
from fhir_server.backends import postgres_store
from fhir_server.security.audit.read_blocks import build_template
from fhir_server.storage.audit import ReadStaging
from fhir_server.storage.protocols import Store
from tests.contract.test_audit_contract import DOCTOR, GRANTED, T0
from tests.pg import fresh_database, release_database

pytestmark = pytest.mark.req("AC-14")


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    url = fresh_database("metrics")
    opened = postgres_store(url, pool_size=2)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
        release_database(url)


async def test_staged_reads_show_as_unchained_until_a_node_chains_them(store: Store) -> None:
    log = store.audit
    assert isinstance(log, ReadStaging)
    template = build_template(DOCTOR, GRANTED, True)
    head = orjson.dumps(["T", "k1", template.caller, template.event], option=orjson.OPT_APPEND_NEWLINE)
    lines = [orjson.dumps(["R", "k1", int((T0 + n) * 1e6), f"k{n}", "Observation", f"o{n}", "1", "p1"],
                          option=orjson.OPT_APPEND_NEWLINE) for n in range(3)]
    await log.stage_reads(head + lines[0])  # one read each (the first also brings its template)
    await log.stage_reads(lines[1])
    await log.stage_reads(lines[2])
    figures = await store_figures(store)
    assert figures["audit_unchained"] == 3
    assert figures["outbox"] == [] and figures["outbox_oldest"] == 0.0
    text = "\n".join(_store_lines(figures))
    assert "kzfhir_audit_unchained_reads 3" in text
    assert "# TYPE kzfhir_outbox_messages gauge" in text
    await log.sync()
    assert (await store_figures(store))["audit_unchained"] == 0
