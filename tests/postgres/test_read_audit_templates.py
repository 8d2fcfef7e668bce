"""Staged read audit on PostgreSQL (storage/postgres/read_audit.py): a staged row lost — a primary failed over
before replicating it — must not leave the later rows naming its template unchainable on every node. Each
staged row carries the templates its records name, and the chain holds each template once. Directly on the
database and behind pgbouncer in transaction mode."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import psycopg
import pytest

from fhir_server.backends import postgres_store
from fhir_server.security.audit.read_blocks import build_template
from fhir_server.storage.audit import ReadStaging
from fhir_server.storage.protocols import Store
from tests.contract.test_audit_contract import DOCTOR, GRANTED, T0
from tests.pg import PgBouncer, fresh_database, release_database

pytestmark = pytest.mark.req("AC-14")


@pytest.fixture(params=["direct", "pgbouncer"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    direct = fresh_database("tpl")
    url = direct if request.param == "direct" else PgBouncer.get().url(direct)
    opened = postgres_store(url, pool_size=2, transaction_pooling=request.param == "pgbouncer")
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
        release_database(direct)


async def test_a_staged_row_is_chained_without_the_row_that_first_carried_its_template(store: Store) -> None:
    log = store.audit
    assert isinstance(log, ReadStaging)
    template = build_template(DOCTOR, GRANTED, True)
    head = orjson.dumps(["T", "k1", template.caller, template.event], option=orjson.OPT_APPEND_NEWLINE)
    lines = [orjson.dumps(["R", "k1", int((T0 + n) * 1e6), f"k{n}", "Observation", f"o{n}", "1", "p1"],
                          option=orjson.OPT_APPEND_NEWLINE) for n in range(3)]
    await log.stage_reads(head + lines[0])
    with psycopg.connect(str(getattr(store, "url")), autocommit=True) as conn:  # noqa: B009 - the PG store's own
        conn.execute("DELETE FROM read_audit")  # the row with the template's first T line is gone
    await log.stage_reads(lines[1])
    await log.stage_reads(lines[2])
    await log.sync()
    found = await log.events("Patient/p1", 10)
    assert [e["entity"][0]["what"]["identifier"]["value"] for _, e in found] == ["k2", "k1"]
    report = await log.verify()
    assert report.ok and report.rows_checked == 2  # the template once, and one block
