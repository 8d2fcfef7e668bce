"""The audit seam's contract (storage/audit.py), written against the protocols and run for every backend:
``Store.audit`` (AuditLog) and ``TxView.audit`` (AuditTx). What any backend must do (AC-14, AC-18, TM-13):
appends commit with their unit or not at all; events read newest first, by patient, with positions that
page; read blocks render their events; an event is found by id; journaled reads are in the trail once
synced; verification accepts the trail and names the first row that was tampered with.

A backend joins by adding a ``Backend`` to ``BACKENDS``: how to build its store (composed with the
chain's rules as the server composes it) and how to tamper with one stored row behind its back.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from fhir_server.backends import AUDIT_RULES, postgres_store, sqlite_store
from fhir_server.security.audit.balp import AuditTarget, rest_event
from fhir_server.security.audit.read_blocks import build_template
from fhir_server.security.context import RequestContext
from fhir_server.security.policy import Verdict
from fhir_server.security.policy.decision import Decision
from fhir_server.storage.audit import ReadStaging
from fhir_server.storage.protocols import Store, TxView
from fhir_server.storage.sqlite.audit.chain import block_data
from tests.pg import PgBouncer, fresh_database, release_database

DOCTOR = RequestContext(subject="u1", fhir_user="Practitioner/dr1", role="practitioner", authenticated=True,
                        client_ip="10.0.0.7")
GRANTED = Verdict(Decision.AUTHORIZED, "granted by the patient's consent", ("consent",), ("Consent/c1",))
T0 = 1_800_000_000.0  # seconds since the epoch: 2027-01-15


@dataclass(frozen=True)
class Backend:
    name: str
    build: Callable[[Path], Store]
    tamper: Callable[[Store, int], None]  # change the data of the chain row at a seq, bypassing the store
    unchained: Callable[[str], int]  # reads recorded but not chained yet, in a closed store (file or URL)


def _sqlite_tamper(store: Store, seq: int) -> None:
    conn = sqlite3.connect(str(getattr(store, "path")))  # noqa: B009 - the SQLite store's own attribute
    try:
        conn.execute("DROP TRIGGER audit_chain_no_update")  # as someone with write access to the file
        (data,) = conn.execute("SELECT data FROM audit_chain WHERE seq = ?", (seq,)).fetchone()
        changed = block_data(data).replace(b"Practitioner/dr1", b"Practitioner/dr7", 1)  # a block is compressed
        conn.execute("UPDATE audit_chain SET data = ? WHERE seq = ?",
                     (changed if bytes(data)[:1] != b"x" else zlib.compress(changed), seq))
        conn.commit()
    finally:
        conn.close()


def _postgres_tamper(store: Store, seq: int) -> None:
    import psycopg

    with psycopg.connect(str(getattr(store, "url")), autocommit=True) as conn:  # noqa: B009 - the PG store's own
        conn.execute("ALTER TABLE audit_chain DISABLE TRIGGER USER")  # as someone with the owner's rights
        row = conn.execute("SELECT data FROM audit_chain WHERE seq = %s", [seq]).fetchone()
        assert row is not None
        conn.execute("UPDATE audit_chain SET data = %s WHERE seq = %s",
                     [bytes(row[0]).replace(b"Practitioner/dr1", b"Practitioner/dr7", 1), seq])


def _postgres_unchained(url: str) -> int:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT coalesce(sum(reads), 0) FROM read_audit").fetchone()
    return int(row[0]) if row else 0


def _sqlite_unchained(path: str) -> int:
    from fhir_server.storage.sqlite.audit.journal import unchained_lines

    return unchained_lines(path)


BACKENDS = [
    Backend("sqlite", lambda folder: sqlite_store(folder / "contract.sqlite", synchronous_full=False),
            _sqlite_tamper, _sqlite_unchained),
    Backend("postgres", lambda folder: postgres_store(fresh_database("audit"), pool_size=2), _postgres_tamper,
            _postgres_unchained),
    # issue 11 §4: behind pgbouncer in transaction mode (tests/pg.py, PgBouncer)
    Backend("pgbouncer", lambda folder: postgres_store(PgBouncer.get().url(fresh_database("audit")), pool_size=2,
                                                       transaction_pooling=True), _postgres_tamper,
            _postgres_unchained),
]


@pytest.fixture(params=BACKENDS, ids=[b.name for b in BACKENDS])
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    return chosen


@pytest.fixture
async def store(backend: Backend, tmp_path: Path) -> AsyncIterator[Store]:
    opened = backend.build(tmp_path)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
        release_database(getattr(opened, "url", None))


def event(n: int, patient: str | None = "p1") -> dict[str, Any]:
    target = AuditTarget("read", "Observation", f"o{n}", "1", patient_id=patient)
    return rest_event(DOCTOR, target, GRANTED, recorded=T0 + n)


def _patient(e: dict[str, Any]) -> str | None:
    for entity in e.get("entity", []):
        if (entity.get("role") or {}).get("code") == "1":
            return str(entity["what"]["reference"])
    return None


async def _append(store: Store, events: list[dict[str, Any]]) -> None:
    def unit(view: TxView) -> None:
        view.audit.append_events(events)

    await store.transaction(unit)


async def _append_reads(store: Store, records: list[tuple[int, str, str, str, str, str | None]]) -> int:
    """One read template and one read block of ``records`` (micros, request id, type, id, version,
    patient), appended in a unit as a store without a journal does (security/read_gate.py)."""
    template = build_template(DOCTOR, GRANTED, True)
    lines = b",".join(orjson.dumps(["R", "k1", *record]) for record in records)
    recorded = AUDIT_RULES.instant(records[0][0])
    patients = sorted({f"Patient/{r[-1]}" for r in records if r[-1]})

    def unit(view: TxView) -> int:
        seq = view.audit.append_template(AUDIT_RULES.template_bytes(template.caller, template.event), recorded)
        return view.audit.append_read_block(AUDIT_RULES.block_bytes(lines, {"k1": seq}, recorded), recorded, patients)

    result: int = await store.transaction(unit, relaxed=True)
    return result


class Refused(Exception):
    pass


@pytest.mark.req("AC-14")
async def test_appends_of_a_unit_that_fails_leave_nothing(store: Store) -> None:
    def unit(view: TxView) -> None:
        view.audit.append_events([event(1), event(2)])
        view.enqueue("notification", "Patient/p1", "k", b"{}")
        raise Refused

    with pytest.raises(Refused):
        await store.transaction(unit)
    assert await store.audit.events(None, 10) == []
    assert await store.outbox_partition("notification", "Patient/p1", 10) == []
    report = await store.audit.verify()
    assert report.ok and report.rows_checked == 0


@pytest.mark.req("AC-14")
async def test_committed_events_read_newest_first_by_patient_and_page_by_position(store: Store) -> None:
    written = [event(n, "p1" if n % 2 else "p2") for n in range(1, 9)]
    await _append(store, written[:5])
    await _append(store, written[5:])
    every = await store.audit.events(None, 100)
    assert [e["id"] for _, e in every] == [e["id"] for e in reversed(written)]
    positions = [p for p, _ in every]
    assert positions == sorted(positions, reverse=True) and len(set(positions)) == len(positions)
    mine = await store.audit.events("Patient/p1", 100)
    assert [e["id"] for _, e in mine] == [e["id"] for e in reversed(written) if _patient(e) == "Patient/p1"]
    first = await store.audit.events("Patient/p1", 2)
    rest = await store.audit.events("Patient/p1", 100, first[-1][0])
    assert [e["id"] for _, e in first + rest] == [e["id"] for _, e in mine]
    assert await store.audit.events("Patient/nobody", 10) == []


@pytest.mark.req("AC-14")
async def test_an_event_is_found_by_id_with_its_position(store: Store) -> None:
    written = [event(1), event(2)]
    await _append(store, written)
    found = await store.audit.event(written[1]["id"])
    assert found is not None
    position, data = found
    assert orjson.loads(data) == written[1]
    assert position == (await store.audit.events(None, 1))[0][0]
    assert await store.audit.event("no-such-event") is None


@pytest.mark.req("AC-14")
@pytest.mark.req("AC-18")
async def test_a_read_block_renders_its_events_for_each_patient(store: Store) -> None:
    single = event(1)
    await _append(store, [single])
    records: list[tuple[int, str, str, str, str, str | None]] = [
        (int((T0 + 10) * 1e6), "q1", "Observation", "o1", "1", "p1"),
        (int((T0 + 11) * 1e6), "q2", "Condition", "c1", "2", "p2"),
        (int((T0 + 12) * 1e6), "q3", "Observation", "o3", "1", "p1")]
    seq = await _append_reads(store, records)
    p1 = await store.audit.block_events(seq, "Patient/p1")
    assert [e["entity"][0]["what"]["identifier"]["value"] for e in p1] == ["q1", "q3"]  # oldest first
    assert {_patient(e) for e in p1} == {"Patient/p1"}
    assert [e["id"] for e in await store.audit.block_events(seq, "Patient/p2")] == [f"r{seq}-1"]
    newest = await store.audit.events("Patient/p1", 10)
    assert [e["id"] for _, e in newest] == [f"r{seq}-2", f"r{seq}-0", single["id"]]
    found = await store.audit.event(f"r{seq}-2")
    assert found is not None and orjson.loads(found[1]) == newest[0][1] and found[0] == newest[0][0]
    assert await store.audit.event(f"r{seq}-3") is None  # past the block's records
    assert await store.audit.event(f"t{seq - 1}") is None  # a template is no event
    assert await store.audit.block_events(seq + 100, "Patient/p1") == []
    assert (await store.audit.verify()).ok


@pytest.mark.req("AC-14")
async def test_journaled_reads_are_in_the_trail_once_synced(store: Store) -> None:
    template = build_template(DOCTOR, GRANTED, True)
    head = orjson.dumps(["T", "j1", template.caller, template.event], option=orjson.OPT_APPEND_NEWLINE)
    lines = [orjson.dumps(["R", "j1", int((T0 + n) * 1e6), f"j{n}", "Observation", f"o{n}", "1", "p1"],
                          option=orjson.OPT_APPEND_NEWLINE) for n in range(3)]
    log = store.audit
    if isinstance(log, ReadStaging):  # no journal file (PostgreSQL): the same lines staged in the database
        assert not log.journal_reads(head + lines[0])
        await log.stage_reads(head + lines[0])
        await log.stage_reads(lines[1] + lines[2])
    else:
        assert log.journal_reads(head + lines[0])
        assert log.journal_reads(lines[1] + lines[2])
    await store.audit.sync()
    found = await store.audit.events("Patient/p1", 10)
    assert [e["entity"][0]["what"]["identifier"]["value"] for _, e in found] == ["j2", "j1", "j0"]
    again = await store.audit.event(found[0][1]["id"])
    assert again is not None and orjson.loads(again[1]) == found[0][1]
    report = await store.audit.verify()
    assert report.ok and report.rows_checked == 2  # a template row and a block row


@pytest.mark.req("AC-14")
@pytest.mark.req("TM-13")
async def test_verify_accepts_the_trail_and_reports_the_first_tampered_row(store: Store, backend: Backend) -> None:
    await _append(store, [event(n) for n in range(1, 5)])
    await _append_reads(store, [(int((T0 + 9) * 1e6), "q9", "Observation", "o9", "1", "p1")])
    report = await store.audit.verify()
    assert report.ok and report.rows_checked == report.head_seq == 6 and report.first_broken_seq is None
    assert (await store.audit.verify({report.head_seq: report.head_hash})).ok
    rewritten = await store.audit.verify({report.head_seq: "0" * 64})
    assert not rewritten.ok and rewritten.first_broken_seq == report.head_seq
    backend.tamper(store, 3)
    broken = await store.audit.verify()
    assert not broken.ok and broken.first_broken_seq == 3 and broken.rows_checked == 2 and broken.problem


# A server process that acknowledges reads and is then killed: the read gate's own audit path (ReadAudit:
# journaled, or staged, or committed, as the backend does it), then SIGKILL — no shutdown hook runs.
_KILLED_READER = """
import asyncio, os, signal, sys
from fhir_server.backends import postgres_store, sqlite_store
from fhir_server.security.read_gate import ReadAudit
from tests.contract.test_audit_contract import DOCTOR, GRANTED, T0
from fhir_server.security.audit.read_blocks import build_template

async def main(kind, where, count):
    store = sqlite_store(where, synchronous_full=False) if kind == "sqlite" else postgres_store(where, pool_size=2)
    await store.open()
    audit, template = ReadAudit(store), build_template(DOCTOR, GRANTED, True)

    async def read(n):
        record = (int((T0 + n) * 1e6), f"killed-{n}", "Observation", f"o{n}", "1", "p1" if n % 2 else "p2")
        if not audit.journal(template, record):
            await audit.commit(template, record)
        print(f"killed-{n}", flush=True)  # acknowledged: the read would be answered now

    await asyncio.gather(*(read(n) for n in range(count // 2)))  # concurrent: one batch, or a few
    await asyncio.gather(*(read(n) for n in range(count // 2, count)))
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


@pytest.mark.req("AC-14")
@pytest.mark.req("TM-17")
@pytest.mark.skipif(os.name != "posix", reason="needs SIGKILL")
async def test_reads_acknowledged_before_a_kill_are_in_the_chain_and_the_access_log(backend: Backend,
                                                                                     tmp_path: Path) -> None:
    where = str(tmp_path / "contract.sqlite") if backend.name == "sqlite" else fresh_database("killed")
    try:
        done = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-c", _KILLED_READER, backend.name, where, "40"], capture_output=True,
            text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
        assert done.returncode == -signal.SIGKILL, done.stderr
        acknowledged = done.stdout.split()
        assert len(acknowledged) == 40
        assert backend.unchained(where) > 0  # killed before its reads were chained: what follows proves something
        # the next process on the store (the same node restarted, or another node) finds every one of them
        opened = sqlite_store(where, synchronous_full=False) if backend.name == "sqlite" else postgres_store(where)
        await opened.open()
        try:
            for patient, parity in (("Patient/p1", 1), ("Patient/p2", 0)):
                logged = await opened.audit.events(patient, 100)  # the patient's access log reads this
                ids = [x["what"]["identifier"]["value"] for _, e in logged for x in e["entity"]
                       if x["type"].get("code") == "XrequestId"]
                assert sorted(ids) == sorted(r for r in acknowledged if int(r.split("-")[1]) % 2 == parity)
                assert all(e["id"].startswith("r") for _, e in logged)  # read blocks of the chain
            report = await opened.audit.verify()
            assert report.ok, report
            assert report.rows_checked >= 2  # a template and at least one block
        finally:
            await opened.close()
    finally:
        release_database(where)
