"""`kzfhir audit verify --database postgresql://…`: the chain of a PostgreSQL database verified read-only,
an edited row found (AC-14; issue 11)."""

from __future__ import annotations

import json

import pytest

from fhir_server.backends import postgres_store
from fhir_server.cli import main
from tests.contract.test_audit_contract import _append, _postgres_tamper, event
from tests.pg import fresh_database, release_database

pytestmark = pytest.mark.req("AC-14")


async def test_the_cli_verifies_a_postgresql_chain_counts_staged_reads_and_finds_an_edit(capsys):
    url = fresh_database("cli")
    store = postgres_store(url, pool_size=2)
    await store.open()
    try:
        await _append(store, [event(n) for n in range(1, 5)])
        assert main(["audit", "verify", "--database", url, "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["ok"] and report["rows_checked"] == report["head_seq"] == 4 and report["unchained_reads"] == 0
        _postgres_tamper(store, 3)
        assert main(["audit", "verify", "--database", url]) == 1
        out = capsys.readouterr().out
        assert "BROKEN at seq 3" in out
    finally:
        await store.close()
        release_database(url)
    assert main(["audit", "verify", "--database", "postgresql://nobody@127.0.0.1:1/none"]) == 2
