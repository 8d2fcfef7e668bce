"""Tamper-evident audit storage (TM-13, AC-14): AuditEvents in a SHA-256 hash chain.

Each row stores the canonical bytes of one AuditEvent and ``hash = SHA-256(prev_hash || "\\n" ||
data)``, ``prev_hash`` being the previous row's hash (``GENESIS_HASH`` for row 1). Changing,
deleting, inserting or reordering any row breaks the chain at that point, which
``verify_chain`` reports with the first broken ``seq``.

Triggers make the table append-only at the SQL level too (UPDATE/DELETE abort, INSERT must extend
the chain). They stop mistakes and SQL-level tampering through the application; they do not stop
someone with write access to the database file, who can drop triggers and rewrite rows. That is
why verification exists, and why rewriting the *tail* of the chain (recomputing every later hash)
is only caught against an anchor: record ``(seq, hash)`` of the head somewhere else from time to
time (a signed report, a ticket, another system) and pass it to ``verify_chain(..., anchors=...)``
or ``kzfhir audit verify --anchor SEQ:HASH``.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

GENESIS_HASH = "0" * 64

CHAIN_DDL = f"""
CREATE TABLE IF NOT EXISTS audit_chain (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    recorded TEXT NOT NULL,
    patient TEXT,
    data BLOB NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_chain_by_patient ON audit_chain (patient, recorded);
CREATE TRIGGER IF NOT EXISTS audit_chain_no_update BEFORE UPDATE ON audit_chain
BEGIN SELECT RAISE(ABORT, 'audit_chain is append-only (AC-14)'); END;
CREATE TRIGGER IF NOT EXISTS audit_chain_no_delete BEFORE DELETE ON audit_chain
BEGIN SELECT RAISE(ABORT, 'audit_chain is append-only (AC-14)'); END;
CREATE TRIGGER IF NOT EXISTS audit_chain_extend_only BEFORE INSERT ON audit_chain
WHEN NEW.seq IS NOT (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_chain)
  OR NEW.prev_hash IS NOT COALESCE(
       (SELECT hash FROM audit_chain ORDER BY seq DESC LIMIT 1), '{GENESIS_HASH}')
BEGIN SELECT RAISE(ABORT, 'audit_chain rows must extend the chain'); END;
CREATE TABLE IF NOT EXISTS audit_patient_blocks (
    patient TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    seqs TEXT NOT NULL,
    PRIMARY KEY (patient, last_seq)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS audit_patient_blocks_no_update BEFORE UPDATE ON audit_patient_blocks
BEGIN SELECT RAISE(ABORT, 'audit_patient_blocks is append-only (AC-14)'); END;
CREATE TRIGGER IF NOT EXISTS audit_patient_blocks_no_delete BEFORE DELETE ON audit_patient_blocks
BEGIN SELECT RAISE(ABORT, 'audit_patient_blocks is append-only (AC-14)'); END;
"""

INSERT_SQL = (
    "INSERT INTO audit_chain (seq, event_id, recorded, patient, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
HEAD_SQL = "SELECT seq, hash FROM audit_chain ORDER BY seq DESC LIMIT 1"
SELECT_SQL = "SELECT seq, event_id, recorded, patient, data, prev_hash, hash FROM audit_chain ORDER BY seq"
BY_PATIENT_SQL = "SELECT data FROM audit_chain WHERE patient = ? ORDER BY recorded DESC, seq DESC LIMIT ?"


@dataclass(frozen=True, slots=True)
class ChainRow:
    seq: int
    event_id: str
    recorded: str
    patient: str | None
    data: bytes
    prev_hash: str
    hash: str

    def as_tuple(self) -> tuple[int, str, str, str | None, bytes, str, str]:
        return (self.seq, self.event_id, self.recorded, self.patient, self.data, self.prev_hash, self.hash)


@dataclass(frozen=True, slots=True)
class ChainReport:
    """Result of a verification. ``first_broken_seq`` is None when the chain is intact."""

    ok: bool
    rows_checked: int
    head_seq: int
    head_hash: str
    first_broken_seq: int | None = None
    problem: str | None = None


def canonical_bytes(event: Mapping[str, Any]) -> bytes:
    """The bytes that are stored and hashed: compact JSON with sorted keys."""
    return orjson.dumps(event, option=orjson.OPT_SORT_KEYS)


def link(prev_hash: str, event_bytes: bytes) -> str:
    """The hash of a row: SHA-256 over the previous hash, a newline and the event bytes."""
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + event_bytes).hexdigest()


def patient_of(event: Mapping[str, Any]) -> str | None:
    """``Patient/{id}`` of the event's patient entity (object-role 1), for the indexed column."""
    for entity in event.get("entity", []) or []:
        role = entity.get("role") or {}
        if role.get("code") == "1" and str(role.get("system", "")).endswith("/object-role"):
            reference = (entity.get("what") or {}).get("reference")
            return reference if isinstance(reference, str) else None
    return None


def make_row(seq: int, prev_hash: str, event: Mapping[str, Any]) -> ChainRow:
    """The chain row for ``event`` placed after a row whose hash is ``prev_hash``."""
    data = canonical_bytes(event)
    return ChainRow(
        seq, str(event["id"]), str(event["recorded"]), patient_of(event), data, prev_hash, link(prev_hash, data)
    )


def append_events(conn: sqlite3.Connection, events: Iterable[Mapping[str, Any]]) -> list[ChainRow]:
    """Append events to the chain inside the caller's open transaction on ``conn``.

    Call it from the store's single writer in the same transaction as the data change (writes)
    or as a batched flush (reads), so the rows commit atomically with everything else.
    """
    head = conn.execute(HEAD_SQL).fetchone()
    seq, prev = (int(head[0]), str(head[1])) if head else (0, GENESIS_HASH)
    rows = []
    for event in events:
        seq += 1
        row = make_row(seq, prev, event)
        rows.append(row)
        prev = row.hash
    conn.executemany(INSERT_SQL, [row.as_tuple() for row in rows])
    return rows


#: How far ``audit_patient_blocks`` covers the read blocks (kv key; every block up to it is indexed).
INDEX_MARK = "audit-patient-index"


def append_special(conn: sqlite3.Connection, prefix: str, data: bytes, recorded: str) -> int:
    """Append a read block (``prefix`` "r") or a read template ("t") of security/audit/read_blocks.py
    as a chain row inside the caller's open transaction; returns the row's seq."""
    head = conn.execute(HEAD_SQL).fetchone()
    seq, prev = (int(head[0]) + 1, str(head[1])) if head else (1, GENESIS_HASH)
    conn.execute(INSERT_SQL, (seq, f"{prefix}{seq}", recorded, None, data, prev, link(prev, data)))
    return seq


def special_row(conn: sqlite3.Connection, prefix: str, seq: int) -> bytes | None:
    """The data of read block ``r{seq}`` (``prefix`` "r") or read template ``t{seq}`` ("t"), if any."""
    row = conn.execute("SELECT data FROM audit_chain WHERE seq = ? AND event_id = ?",
                       (seq, f"{prefix}{seq}")).fetchone()
    return bytes(row[0]) if row else None


def index_mark(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM kv WHERE key = ?", (INDEX_MARK,)).fetchone()
    return int(row[0]) if row else 0


def index_blocks(conn: sqlite3.Connection, blocks: Mapping[int, Iterable[str]], up_to: int) -> None:
    """Index read blocks by patient, inside the caller's transaction: one row per patient listing
    that patient's blocks, and the mark moved to ``up_to`` (every block up to it is then indexed).

    The index trails the chain on purpose: a row per patient per indexing round, instead of one per
    read, keeps a read's audit cost flat; blocks above the mark are found by scanning them."""
    by_patient: dict[str, list[int]] = {}
    for seq, patients in sorted(blocks.items()):
        for patient in patients:
            by_patient.setdefault(patient, []).append(seq)
    conn.executemany(
        "INSERT INTO audit_patient_blocks (patient, last_seq, first_seq, seqs) VALUES (?, ?, ?, ?)",
        [(p, seqs[-1], seqs[0], " ".join(map(str, seqs))) for p, seqs in sorted(by_patient.items())])
    conn.execute("INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                 (INDEX_MARK, str(up_to)))


def unindexed_blocks(conn: sqlite3.Connection, after: int) -> dict[int, list[str]]:
    """seq -> patients of the read blocks above the index mark (to index them after a restart)."""
    from fhir_server.security.audit.read_blocks import block_patients, parse_block

    rows = conn.execute("SELECT seq, data FROM audit_chain WHERE seq > ? AND event_id = 'r' || seq ORDER BY seq",
                        (after,))
    return {int(seq): block_patients(parse_block(bytes(data))) for seq, data in rows}


def _special_problem(seq: int, event_id: str, recorded: str, patient: str | None, body: bytes,
                     templates: set[int]) -> str | None:
    """Checks of read blocks and read templates: their own shape, and that every record of a block
    names a template row earlier in the chain."""
    from fhir_server.security.audit.read_blocks import parse_block, parse_template

    if patient is not None:
        return "read blocks and templates have no patient column"
    try:
        if event_id[0] == "t":
            parse_template(body)
            templates.add(seq)
            return None
        block = parse_block(body)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        return "a read block or template row does not hold one"
    if block.get("recorded") != recorded:
        return "indexed column recorded disagrees with the read block"
    if any(seq not in templates for seq in block["templates"].values()):
        return "a read block names no earlier template row"
    return None


def _row_problem(row: tuple[Any, ...], expected_seq: int, prev: str, templates: set[int]) -> str | None:
    seq, event_id, recorded, patient, data, prev_hash, stored_hash = row
    if seq != expected_seq:
        return f"expected seq {expected_seq} here: rows were deleted, inserted or reordered"
    if prev_hash != prev:
        return "prev_hash does not match the previous row: a row before it was changed or removed"
    body = bytes(data) if not isinstance(data, str) else data.encode("utf-8")
    if link(prev_hash, body) != stored_hash:
        return "hash does not match the row's content: the event was changed"
    if event_id in (f"r{seq}", f"t{seq}"):
        return _special_problem(seq, event_id, recorded, patient, body, templates)
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "event data is not JSON"
    if (event.get("id"), event.get("recorded"), patient_of(event)) != (event_id, recorded, patient):
        return "indexed columns (event_id, recorded, patient) disagree with the event"
    return None


def verify_chain(rows: Iterable[tuple[Any, ...]], anchors: Mapping[int, str] | None = None) -> ChainReport:
    """Check rows ``(seq, event_id, recorded, patient, data, prev_hash, hash)`` in seq order.

    ``anchors`` maps seq -> hash recorded earlier outside the database; a missing or different
    anchored row means the chain was truncated or rewritten from that point.
    """
    expected, prev, count = 1, GENESIS_HASH, 0
    pending = dict(anchors or {})
    templates: set[int] = set()
    for row in rows:
        problem = _row_problem(tuple(row), expected, prev, templates)
        if problem is None and row[0] in pending and pending.pop(row[0]) != row[6]:
            problem = "hash differs from the recorded anchor: the chain was rewritten"
        if problem is not None:
            return ChainReport(False, count, expected - 1, prev, int(row[0]), problem)
        prev, expected, count = str(row[6]), expected + 1, count + 1
    if pending:
        missing = min(pending)
        return ChainReport(
            False, count, expected - 1, prev, missing, "anchored row is missing: the chain was truncated"
        )
    return ChainReport(True, count, expected - 1, prev)


def read_rows(conn: sqlite3.Connection) -> Iterator[tuple[Any, ...]]:
    """All chain rows in seq order, streamed."""
    yield from conn.execute(SELECT_SQL)


def _indexed_blocks(conn: sqlite3.Connection) -> dict[int, list[str]]:
    """seq -> patients, as ``audit_patient_blocks`` lists them."""
    found: dict[int, list[str]] = {}
    for patient, seqs in conn.execute("SELECT patient, seqs FROM audit_patient_blocks ORDER BY patient, last_seq"):
        for seq in str(seqs).split():
            found.setdefault(int(seq), []).append(str(patient))
    return {seq: sorted(patients) for seq, patients in found.items()}


def _checked_rows(rows: Iterable[tuple[Any, ...]], indexed: dict[int, list[str]], mark: int,
                  problems: list[tuple[int, str]]) -> Iterator[tuple[Any, ...]]:
    """The rows, noting the first read block (up to the index mark) whose indexed patients differ
    from its records: a removed index row would hide reads from the patient's access log."""
    from fhir_server.security.audit.read_blocks import block_patients, parse_block

    for row in rows:
        seq, event_id, data = int(row[0]), str(row[1]), row[4]
        if event_id == f"r{seq}" and seq <= mark:
            try:
                wanted = block_patients(parse_block(bytes(data)))
            except (ValueError, orjson.JSONDecodeError):
                wanted = None  # verify_chain reports the row itself
            if wanted is not None and indexed.pop(seq, []) != wanted and not problems:
                problems.append((seq, "audit_patient_blocks disagrees with the read block's patients"))
        yield row


def verify_database(path: str, anchors: Mapping[int, str] | None = None) -> ChainReport:
    """Verify the ``audit_chain`` table of a SQLite database file, opened read-only, and the
    patients index of its read blocks."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        indexed = _indexed_blocks(conn)
        problems: list[tuple[int, str]] = []
        mark = index_mark(conn) if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'kv'").fetchone() else 0
        report = verify_chain(_checked_rows(read_rows(conn), indexed, mark, problems), anchors)
        if indexed and not problems:
            seq = min(indexed)
            problems.append((seq, "audit_patient_blocks names a read block that does not exist or is not indexed yet"))
        if report.ok and problems:
            seq, problem = problems[0]
            return ChainReport(False, report.rows_checked, report.head_seq, report.head_hash, seq, problem)
        return report
    finally:
        conn.close()


def events_for_patient(conn: sqlite3.Connection, patient_id: str, limit: int = 1000) -> list[dict[str, Any]]:
    """The latest AuditEvents about ``Patient/{patient_id}`` (for ``Patient/$access-log``)."""
    rows = conn.execute(BY_PATIENT_SQL, (f"Patient/{patient_id}", limit)).fetchall()
    return [orjson.loads(bytes(row[0])) for row in rows]
