"""``history`` and ``audit_chain`` partitioned by month, ``pkey`` in every data table's keys (schema
version 3, issue 11 §2): a version-2 database upgraded in place by ``kzfhir db upgrade`` (rows moved
into their months, the chain re-checked link by link on the way), old months detached by ``kzfhir db
archive``, and the chain verifying across what is left, saying which range is archived; a month
detached any other way is still a break."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from fhir_server.backends import AUDIT_RULES, postgres_store
from fhir_server.cli import main
from fhir_server.security.audit.balp import AuditTarget, rest_event
from fhir_server.security.audit.read_blocks import build_template
from fhir_server.storage.postgres.conn import QmarkConnection
from fhir_server.storage.postgres.schema import (
    MONTHS_AHEAD,
    SCHEMA_VERSION,
    add_months,
    ensure_partitions,
    month_of,
    partition_name,
)
from fhir_server.storage.postgres.store import PostgresStore
from fhir_server.storage.postgres.txview import PgTxView
from tests.contract.test_audit_contract import DOCTOR, GRANTED
from tests.contract.test_store_contract import patient, put_unit
from tests.pg import PgCluster, release_database

pytestmark = pytest.mark.req("AC-14")
_NAMES = itertools.count(1)
V2_SCHEMA = Path(__file__).with_name("schema_v2.sql")
NOW = month_of(datetime.now(UTC))
# three months that are over, oldest first: the store of version 2 was written in them
OLD = [add_months(NOW, -3), add_months(NOW, -2), add_months(NOW, -1)]


def _instant(month: tuple[int, int], day: int) -> datetime:
    return datetime(month[0], month[1], day, 9, 30, tzinfo=UTC)


@pytest.fixture
def empty_database() -> Iterator[str]:
    cluster = PgCluster.get()
    release_database(cluster.database("warm"))  # the templates exist before we bypass them
    name = f"part_{os.getpid()}_{next(_NAMES)}"
    url = cluster.url(name)
    cluster._admin(f"CREATE DATABASE {name} TEMPLATE template0")
    yield url
    release_database(url)


def _unit(raw: psycopg.Connection[Any], at: datetime, work: Any) -> Any:
    """Run ``work(view)`` as a write unit stamped ``at``, directly on a connection (the store of version 2
    had the same tables for resources, history and the chain; this writes them as its units did)."""
    with raw.transaction():
        head = raw.execute("SELECT next_seq, next_rid FROM store_head WHERE id = 1 FOR UPDATE").fetchone()
        assert head is not None
        view = PgTxView(QmarkConnection(raw), at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), int(head[0]), AUDIT_RULES,
                        int(head[1]))
        result = work(view)
        raw.execute("UPDATE store_head SET last_micros = %s, next_seq = %s, next_rid = %s WHERE id = 1",
                    [int(at.timestamp() * 1_000_000), view.next_seq, view.next_rid])
    return result


def _event(n: int, at: datetime) -> dict[str, Any]:
    return rest_event(DOCTOR, AuditTarget("read", "Patient", "p1", str(n), patient_id="p1"), GRANTED,
                      recorded=at.timestamp())


def _seed_version_2(url: str) -> int:
    """A version-2 store with a Patient updated once in each old month, each update audited, and a read
    template in the first month that a read block of the last month names. Returns the chain's length."""
    template = build_template(DOCTOR, GRANTED, True)
    with psycopg.connect(url, autocommit=True) as raw:
        raw.execute(V2_SCHEMA.read_text())  # type: ignore[arg-type]  # our own DDL text
        template_seq = 0
        for version, month in enumerate(OLD, start=1):
            at = _instant(month, 10)

            def work(view: PgTxView, version: int = version, at: datetime = at) -> int:
                put_unit(patient("p1", f"Ахметов{version}", "850315300019"), version)(view)
                view.audit.append_events([_event(version, at), _event(version + 10, at)])
                if version == 1:
                    caller = AUDIT_RULES.template_bytes(template.caller, template.event)
                    return view.audit.append_template(caller, AUDIT_RULES.instant(int(at.timestamp() * 1e6)))
                return 0

            template_seq = _unit(raw, at, work) or template_seq
        at = _instant(OLD[-1], 20)
        recorded = AUDIT_RULES.instant(int(at.timestamp() * 1_000_000))
        lines = orjson.dumps(["R", "k1", int(at.timestamp() * 1_000_000), "q1", "Patient", "p1", "3", "p1"])
        _unit(raw, at, lambda view: view.audit.append_read_block(
            AUDIT_RULES.block_bytes(lines, {"k1": template_seq}, recorded), recorded, ["Patient/p1"]))
        counted = raw.execute("SELECT count(*) FROM audit_chain").fetchone()
        assert counted is not None
        return int(counted[0])


def _one(url: str, sql: str, args: list[Any] | None = None) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql, args or []).fetchone()  # type: ignore[arg-type]  # test SQL
        return row[0] if row else None


def _key(url: str, table: str, kind: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [str(r[0]) for r in conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = %s "
            "ORDER BY conname", [table, kind]).fetchall()]


def _attached(url: str, table: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {str(r[0]) for r in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = "
            "%s::regclass", [table]).fetchall()}


async def _in_store(url: str, work: Any) -> Any:
    store = postgres_store(url, pool_size=2)
    assert isinstance(store, PostgresStore)
    await store.open()
    try:
        return await work(store)
    finally:
        await store.close()


def test_a_new_schema_is_partitioned_by_month_with_pkey_in_every_key(empty_database, capsys):
    assert main(["db", "init", "--database", empty_database]) == 0
    assert f"version {SCHEMA_VERSION}" in capsys.readouterr().out
    for table in ("history", "audit_chain"):
        assert _one(empty_database, "SELECT relkind FROM pg_class WHERE oid = %s::regclass", [table]) == "p"
        months = [add_months(NOW, n) for n in range(MONTHS_AHEAD + 1)]
        assert {partition_name(table, m) for m in months} | {f"{table}_default"} == _attached(empty_database, table)
    with psycopg.connect(empty_database, autocommit=True) as conn:  # the chain's months are append-only too
        for name in (partition_name("audit_chain", NOW), "audit_chain_default"):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute(f"TRUNCATE {name}")  # type: ignore[arg-type]  # test SQL
    assert _key(empty_database, "resources", "p") == ["PRIMARY KEY (rid, pkey)"]
    assert _key(empty_database, "resources", "u") == ["UNIQUE (type, id, pkey)"]
    assert _key(empty_database, "history", "p") == ["PRIMARY KEY (rid, version, last_updated, pkey)"]
    assert _key(empty_database, "sp_token", "p") == ["PRIMARY KEY (rid, param, n, pkey)"]
    assert _key(empty_database, "sp_compartment", "p") == ["PRIMARY KEY (rid, comp_type, comp_id, pkey)"]
    # a row past the prepared months goes to the DEFAULT partition (never refused), and that month is
    # then left there rather than failing the next start
    far = add_months(NOW, MONTHS_AHEAD + 2)
    with psycopg.connect(empty_database) as conn:
        conn.execute("INSERT INTO history (rid, version, type, id, last_updated, deleted, method, seq) VALUES "
                     "(1, 1, 'Patient', 'x', %s, 0, 'POST', 1)", [f"{far[0]:04d}-{far[1]:02d}-02T00:00:00.000000Z"])
        assert ensure_partitions(conn, add_months(far, -1), far) == [partition_name("history", add_months(far, -1)),
                                                                    partition_name("audit_chain", add_months(far, -1)),
                                                                    partition_name("audit_chain", far)]
        assert conn.execute("SELECT count(*) FROM history_default").fetchone() == (1,)


def test_db_upgrade_moves_a_version_2_store_into_monthly_partitions(empty_database, capsys):
    chain = _seed_version_2(empty_database)
    assert _one(empty_database, "SELECT version FROM kzfhir_schema") == 2
    assert main(["db", "upgrade", "--database", empty_database]) == 0
    assert f"version {SCHEMA_VERSION} (was 2)" in capsys.readouterr().out
    assert _one(empty_database, "SELECT relkind FROM pg_class WHERE oid = 'history'::regclass") == "p"
    assert _one(empty_database, "SELECT to_regclass('history_v2')") is None  # the old tables are gone
    for month in OLD:  # each version and its audit rows in the month they were written
        assert _one(empty_database, f"SELECT count(*) FROM {partition_name('history', month)}") == 1
        assert _one(empty_database, f"SELECT count(*) FROM {partition_name('audit_chain', month)}") >= 2
    assert _one(empty_database, "SELECT count(*) FROM audit_chain") == chain
    assert _one(empty_database, "SELECT count(*) FROM history_default") == 0
    assert _key(empty_database, "resources", "p") == ["PRIMARY KEY (rid, pkey)"]
    assert _key(empty_database, "sp_string", "p") == ["PRIMARY KEY (rid, param, n, pkey)"]

    async def use(store: PostgresStore) -> None:
        report = await store.audit.verify()
        assert report.ok and report.rows_checked == chain and report.archived is None
        assert [(await store.vread("Patient", "p1", v)) is not None for v in (1, 2, 3)] == [True] * 3
        assert (await store.read("Patient", "p1")).version == 3  # type: ignore[union-attr]
        await store.transaction(put_unit(patient("p1", "Ахметова", "850315300019"), 4))  # writing goes on
        assert (await store.audit.verify()).ok

    asyncio.run(_in_store(empty_database, use))
    assert main(["db", "upgrade", "--database", empty_database]) == 0  # again: nothing to do
    assert f"version {SCHEMA_VERSION}" in capsys.readouterr().out


def test_archived_months_are_named_by_verification_not_reported_broken(empty_database, capsys):
    chain = _seed_version_2(empty_database)
    assert main(["db", "upgrade", "--database", empty_database]) == 0
    first_kept = OLD[-1]
    before = f"{first_kept[0]:04d}-{first_kept[1]:02d}"
    now = f"{NOW[0]:04d}-{NOW[1]:02d}"
    capsys.readouterr()
    # the month holding the chain's newest row is never archived: the next row links to it
    assert main(["db", "archive", "--before", now, "--database", empty_database]) == 2
    assert "newest row" in capsys.readouterr().err
    later = add_months(NOW, 1)
    assert main(["db", "archive", "--before", f"{later[0]:04d}-{later[1]:02d}", "--database", empty_database]) == 2
    assert "over" in capsys.readouterr().err
    assert main(["db", "archive", "--before", "June", "--database", empty_database]) == 2
    capsys.readouterr()

    def append(store: PostgresStore) -> Any:
        return store.transaction(lambda view: view.audit.append_events([_event(99, datetime.now(UTC))]))

    asyncio.run(_in_store(empty_database, append))
    assert main(["db", "archive", "--before", before, "--database", empty_database]) == 0
    out = capsys.readouterr().out
    gone = [partition_name(t, m) for t in ("audit_chain", "history") for m in OLD[:2]]
    assert all(f"detached {name}" in out for name in gone)
    assert not set(gone) & (_attached(empty_database, "audit_chain") | _attached(empty_database, "history"))
    archived_rows = _one(empty_database, "SELECT max(last_seq) FROM archived_partitions")

    async def verify(store: PostgresStore) -> None:
        report = await store.audit.verify()
        assert report.ok, report
        assert report.rows_checked == chain + 1 - archived_rows  # the rest, from the first kept row on
        assert report.archived is not None and f"seq 1-{archived_rows}" in report.archived
        assert partition_name("audit_chain", OLD[0]) in report.archived
        # the read block of the last month still names its template, archived in the first month: known
        assert await store.read("Patient", "p1") is not None  # current versions stay in resources
        assert await store.vread("Patient", "p1", 3) is not None and await store.vread("Patient", "p1", 1) is None
        anchor = _one(empty_database, "SELECT last_hash FROM archived_partitions WHERE last_seq = %s",
                      [archived_rows])
        assert (await store.audit.verify({archived_rows: anchor})).ok  # an anchor at the archive's end holds
        assert not (await store.audit.verify({archived_rows: "0" * 64})).ok

    asyncio.run(_in_store(empty_database, verify))
    # the archived months are not created again at the next upgrade
    assert main(["db", "upgrade", "--database", empty_database]) == 0
    assert not set(gone) & (_attached(empty_database, "audit_chain") | _attached(empty_database, "history"))
    # the detached tables are still there to dump; dropped, verification is unchanged
    with psycopg.connect(empty_database, autocommit=True) as conn:
        for name in gone:
            conn.execute(f"DROP TABLE {name}")  # type: ignore[arg-type]  # test SQL
        # a month detached behind kzfhir's back is a hole in the chain, not an archive
        conn.execute(f"ALTER TABLE audit_chain DETACH PARTITION {partition_name('audit_chain', OLD[-1])}")  # type: ignore[arg-type]

    async def broken(store: PostgresStore) -> None:
        report = await store.audit.verify()
        assert not report.ok and report.first_broken_seq is not None and report.first_broken_seq > archived_rows

    asyncio.run(_in_store(empty_database, broken))
