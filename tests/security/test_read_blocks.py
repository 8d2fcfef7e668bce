"""Read blocks and the read-audit journal (security/audit/read_blocks.py,
storage/sqlite/audit/journal.py): rendered events equal what ``rest_event`` builds, any chunking of
the journal chains the same events, notices list each read of someone else's data, tampering and
torn tails are handled (AC-14, AC-18, TM-13)."""

from __future__ import annotations

import sqlite3
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_server.backends import sqlite_store
from fhir_server.security.audit.balp import AuditTarget, rest_event
from fhir_server.security.audit.read_blocks import build_template, micros_text
from fhir_server.security.audit.read_notices import expand
from fhir_server.security.audit.rules import CHAIN_RULES
from fhir_server.security.context import RequestContext
from fhir_server.security.policy import Verdict
from fhir_server.security.policy.decision import Decision
from fhir_server.storage.sqlite import indexing
from fhir_server.storage.sqlite.audit.chain import block_data
from fhir_server.storage.sqlite.audit.index import index_blocks
from fhir_server.storage.sqlite.audit.journal import AuditJournal, TemplateCache
from fhir_server.storage.sqlite.audit.queries import audit_event_row, audit_rows
from fhir_server.storage.sqlite.audit.verify import verify_database
from fhir_server.storage.sqlite.schema import connect, create_schema

CALLERS = [
    (RequestContext(subject="u1", fhir_user="Practitioner/dr1", role="practitioner", authenticated=True,
                    client_ip="10.0.0.7", organization_bin="940140000385", token_id="jti-1"),
     Verdict(Decision.AUTHORIZED, "granted by the patient's consent", ("consent",), ("Consent/c1",))),
    (RequestContext(subject="u2", fhir_user="Patient/p1", role="patient", authenticated=True, client_ip="10.0.0.8",
                    purpose_of_use="PATRQT"),
     Verdict(Decision.AUTHORIZED, "own-compartment: own data", ("own-compartment",))),
    (RequestContext(subject="u3", fhir_user="Practitioner/dr2", role="practitioner", authenticated=True),
     Verdict(Decision.AUTHORIZED, "not patient data", ("directory",))),
]


def _expected(ctx: RequestContext, verdict: Verdict, record: tuple[Any, ...], event_id: str) -> dict[str, Any]:
    micros, request_id, rtype, rid, version, patient = record
    event = rest_event(RequestContext(**{**_fields(ctx), "request_id": request_id}),
                       AuditTarget("read", rtype, rid, version, patient_id=patient), verdict)
    event["id"], event["recorded"] = event_id, micros_text(micros)
    return event


def _fields(ctx: RequestContext) -> dict[str, Any]:
    return {name: getattr(ctx, name) for name in ctx.__slots__}  # type: ignore[attr-defined]


class Journaled:
    """A database with a journal, written the way read_gate.ReadAudit writes it."""

    def __init__(self, folder: Path) -> None:
        self.path = str(folder / "audit.sqlite")
        self.conn = connect(self.path, synchronous_full=False)
        create_schema(self.conn, indexing.ddl(), CHAIN_RULES)
        self.journal = AuditJournal(self.path)
        self.journal.open()
        self.keys = TemplateCache()
        self.templates: dict[int, Any] = {}
        self.expected: list[tuple[int, tuple[Any, ...]]] = []  # (caller index, record)
        self.blocks: dict[int, list[str]] = {}

    def read(self, caller: int, record: tuple[Any, ...]) -> None:
        ctx, verdict = CALLERS[caller]
        template = self.templates.get(caller)
        head = b""
        if template is None:
            template = self.templates[caller] = build_template(ctx, verdict, True)
            template.key = f"test-{caller}"
            head = orjson.dumps(["T", template.key, template.caller, template.event], option=orjson.OPT_APPEND_NEWLINE)
        self.journal.append(head + orjson.dumps(["R", template.key, *record], option=orjson.OPT_APPEND_NEWLINE))
        self.expected.append((caller, record))

    def ingest(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        self.blocks.update(self.journal.ingest(self.conn, self.keys, CHAIN_RULES))
        self.conn.execute("COMMIT")

    def events(self) -> list[dict[str, Any]]:
        return [event for _, event in reversed(audit_rows(self.conn, CHAIN_RULES, None, 100_000, None))]


records = st.tuples(
    st.integers(1_700_000_000_000_000, 1_900_000_000_000_000),
    st.from_regex(r"[A-Za-z0-9._-]{1,20}", fullmatch=True),
    st.sampled_from(["Observation", "Condition", "Encounter"]),
    st.from_regex(r"[A-Za-z0-9.-]{1,12}", fullmatch=True),
    st.integers(1, 9).map(str),
    st.sampled_from(["p1", "p2", "p-3"]),
)


@pytest.mark.req("AC-14")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.integers(0, 2), records, st.booleans()), min_size=1, max_size=40))
def test_any_chunking_of_the_journal_chains_exactly_the_events_rest_event_builds(tmp_path_factory, steps):
    world = Journaled(tmp_path_factory.mktemp("journal"))
    for caller, record, ingest_now in steps:
        world.read(caller, record)
        if ingest_now:
            world.ingest()
    world.ingest()
    events = world.events()
    assert len(events) == len(steps)
    for event, (caller, record) in zip(events, world.expected, strict=True):
        assert event == _expected(*CALLERS[caller], record, event["id"])
        _position, data = audit_event_row(world.conn, CHAIN_RULES, event["id"])  # type: ignore[misc]
        assert orjson.loads(data) == event
    world.conn.close()
    index_conn = connect(world.path)
    index_conn.execute("BEGIN IMMEDIATE")
    index_blocks(index_conn, world.blocks, max(world.blocks))
    index_conn.execute("COMMIT")
    index_conn.close()
    assert verify_database(world.path, CHAIN_RULES).ok


@pytest.mark.req("AC-18")
async def test_a_block_notifies_each_patient_once_listing_every_read_by_someone_else(tmp_path):
    world = Journaled(tmp_path)
    for n in range(3):
        world.read(0, (1_800_000_000_000_000 + n, f"d{n}", "Observation", "o1", "1", "p1"))  # doctor -> p1
    world.read(1, (1_800_000_000_100_000, "own", "Observation", "o1", "1", "p1"))  # p1 reads own data
    world.read(0, (1_800_000_000_200_000, "d9", "Condition", "c9", "2", "p2"))  # doctor -> p2
    world.ingest()
    rows = world.conn.execute("SELECT partition, payload FROM outbox WHERE topic = 'notification' ORDER BY partition")
    queued = {partition: orjson.loads(payload) for partition, payload in rows}
    assert set(queued) == {"Patient/p1", "Patient/p2"}  # one message per patient, none for p1's own read
    assert queued["Patient/p1"]["kind"] == "reads" and set(queued["Patient/p1"]["blocks"]) <= set(world.blocks)
    store = sqlite_store(world.path)
    world.conn.close()
    await store.open()
    try:
        p1 = await expand(store, queued["Patient/p1"])
        p2 = await expand(store, queued["Patient/p2"])
    finally:
        await store.close()
    assert p1["digest"] is True and p1["count"] == 3 and p1["patient"] == "Patient/p1"
    assert [item["who"] for item in p1["items"]] == ["Practitioner/dr1"] * 3
    assert all(item["what"] == ["Observation/o1/_history/1"] and item["outcome"] == "success" for item in p1["items"])
    assert p2["items"][0]["what"] == ["Condition/c9/_history/2"] and p2["count"] == 1


@pytest.mark.req("AC-14")
def test_lines_a_killed_process_left_are_chained_by_the_next_and_a_torn_tail_is_left(tmp_path):
    world = Journaled(tmp_path)
    for n in range(5):
        world.read(0, (1_800_000_000_000_000 + n, f"d{n}", "Observation", "o1", "1", "p1"))
    torn = b'["R","test-0",18000'  # a line cut short, as a power loss might leave it (no newline)
    world.journal._map[world.journal._pos:world.journal._pos + len(torn)] = torn  # type: ignore[index]
    # the process dies: nothing ingested; a new process opens its own journal file and chains the old one
    later = AuditJournal(world.path)
    later.open()
    world.conn.execute("BEGIN IMMEDIATE")
    later.ingest(world.conn, TemplateCache(), CHAIN_RULES)
    world.conn.execute("COMMIT")
    events = world.events()
    assert [e["entity"][0]["what"]["identifier"]["value"] for e in events] == [f"d{n}" for n in range(5)]
    files = sorted(p.name for p in tmp_path.iterdir() if ".audit-journal." in p.name)
    assert len(files) == 2  # the old file is kept until the new one holds data past it
    later.append(orjson.dumps(["R", "test-0", 1_800_000_001_000_000, "n1", "Observation", "o1", "1", "p1"],
                              option=orjson.OPT_APPEND_NEWLINE))
    world.conn.execute("BEGIN IMMEDIATE")
    later.ingest(world.conn, TemplateCache(), CHAIN_RULES)  # the template key is found again through kv
    world.conn.execute("COMMIT")
    later.forget_ingested(world.conn)
    assert len(world.events()) == 6
    assert sorted(p.name for p in tmp_path.iterdir() if ".audit-journal." in p.name) == [files[1]]


@pytest.mark.req("AC-14")
@pytest.mark.parametrize("tamper", ["record", "template", "index"])
def test_verify_detects_a_changed_read_record_template_or_removed_index_row(tmp_path, tamper):
    world = Journaled(tmp_path)
    for n in range(4):
        world.read(0, (1_800_000_000_000_000 + n, f"d{n}", "Observation", "o1", "1", "p1" if n % 2 else "p2"))
    world.ingest()
    world.conn.execute("BEGIN IMMEDIATE")
    index_blocks(world.conn, world.blocks, max(world.blocks))
    world.conn.execute("COMMIT")
    world.conn.close()
    assert verify_database(world.path, CHAIN_RULES).ok
    conn = sqlite3.connect(world.path)
    if tamper == "index":
        conn.execute("DROP TRIGGER audit_patient_blocks_no_delete")
        conn.execute("DELETE FROM audit_patient_blocks WHERE patient = 'Patient/p1'")
    else:
        conn.execute("DROP TRIGGER audit_chain_no_update")
        prefix = "r" if tamper == "record" else "t"
        seq, data = conn.execute("SELECT seq, data FROM audit_chain WHERE event_id LIKE ? ORDER BY seq LIMIT 1",
                                 (f"{prefix}%",)).fetchone()
        plain = block_data(data)  # blocks are stored compressed: tamper with what they say, store it as the store does
        changed = zlib.compress(plain.replace(b"Observation", b"Observatiox", 1)) if tamper == "record" else \
            plain.replace(b"Practitioner/dr1", b"Practitioner/dr7", 1)
        assert block_data(changed) != plain
        conn.execute("UPDATE audit_chain SET data = ? WHERE seq = ?", (changed, seq))
    conn.commit()
    conn.close()
    report = verify_database(world.path, CHAIN_RULES)
    assert not report.ok and report.first_broken_seq is not None
    if tamper == "index":
        assert "audit_patient_blocks" in str(report.problem)


def test_a_journal_takes_disk_only_as_far_as_its_data(tmp_path: Path) -> None:
    """Blocks are allocated a step ahead of the data (a full disk fails the append, never a write fault in
    the map), so an idle store's journal costs 1 MB of disk, not its 32 MB length; lines across the steps
    and past the end of a file are all read back."""
    from fhir_server.storage.sqlite.audit import journal as module

    journal = AuditJournal(str(tmp_path / "j.sqlite"))
    journal.open()
    path = tmp_path / "j.sqlite.audit-journal.1"
    assert path.stat().st_size == module.FILE_BYTES
    assert path.stat().st_blocks * 512 <= 2 * module.ALLOCATE_BYTES
    line = b'["R","k",1,"r","Observation","o1","1","p1"]\n'  # one record line
    lines = (module.FILE_BYTES // len(line)) + 1000  # past the first file
    chunk = line * 1000
    for _ in range(lines // 1000):
        journal.append(chunk)
    assert (tmp_path / "j.sqlite.audit-journal.2").exists()
    first = path.stat().st_blocks * 512
    assert first >= journal._ends[1]  # every byte written had its block allocated before
    data = path.read_bytes()[:journal._ends[1]]
    assert data.count(b"\n") == journal._ends[1] // len(line) and b"\x00" not in data
    journal.close()
