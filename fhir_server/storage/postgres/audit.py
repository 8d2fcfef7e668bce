"""The audit seam (storage/audit.py) on PostgreSQL: ``audit_chain`` and ``audit_patient_blocks`` as on
SQLite, appended and read by the SQLite backend's own code through a ``?``-speaking connection
(conn.py), with the chain's rules injected.

One chain order across processes: every write unit holds ``store_head`` locked (store.py), so the head
read before an append is the head when it commits; the ``audit_chain_extend_only`` trigger refuses any
row that does not extend it. No read-audit journal file (no shared memory map across nodes):
``journal_reads`` returns False and the log is a ``ReadStaging`` instead — the read gate awaits
``stage_reads``, which stages the journal's lines in ``read_audit`` by a per-process group commit, and
any process chains them shortly after, or when audit data is read (``sync``; read_audit.py). Read
blocks are indexed by patient in the unit that appends them, so the index mark is always the newest block.

The chain is partitioned by month (schema.py). :func:`archive_partitions` (``kzfhir db archive``)
detaches months that are over, oldest first, after checking that their rows are one contiguous run of
seqs that links to what was archived before; it records the run's last seq and hash and the read
templates in it (``archived_partitions``). Verification then starts after the archived prefix
(``ChainStart``) and says what was archived instead of calling the chain broken; a missing month that was
not archived that way is still a break.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import psycopg

from fhir_server.storage.audit import ChainReport, ChainRules, ChainStart
from fhir_server.storage.postgres.conn import QmarkConnection
from fhir_server.storage.postgres.read_audit import CLAIM_ROWS, ReadStager, TemplateKeys, chain_staged
from fhir_server.storage.postgres.schema import (
    SCHEMA_LOCK,
    ArchiveRefused,
    Month,
    month_of,
    partition_bounds,
    partition_name,
)
from fhir_server.storage.sqlite.audit.chain import SELECT_SQL, append_events, append_special, decoded
from fhir_server.storage.sqlite.audit.index import index_blocks, index_mark, indexed_blocks
from fhir_server.storage.sqlite.audit.queries import audit_event_row, audit_rows, block_events
from fhir_server.storage.sqlite.audit.verify import _checked_rows

T = TypeVar("T")


class PgAuditTx:
    """``storage.audit.AuditTx`` on the unit's connection: rows commit with the unit."""

    __slots__ = ("_conn", "_rules")

    def __init__(self, conn: QmarkConnection, rules: ChainRules) -> None:
        self._conn: Any = conn  # the sqlite functions' connection type, by duck typing
        self._rules = rules

    @property
    def conn(self) -> QmarkConnection:
        """The unit's connection (read_audit.py chains staged reads on it)."""
        conn: QmarkConnection = self._conn
        return conn

    def append_events(self, events: list[dict[str, Any]]) -> None:
        if events:
            append_events(self._conn, self._rules, events)

    def append_read_block(self, data: bytes, recorded: str, patients: list[str]) -> int:
        seq = append_special(self._conn, self._rules, "r", data, recorded)
        index_blocks(self._conn, {seq: patients}, seq)
        return seq

    def append_template(self, data: bytes, recorded: str) -> int:
        return append_special(self._conn, self._rules, "t", data, recorded)


class _Backend(Protocol):
    """What the log needs of its store (PostgresStore)."""

    async def run_query(self, fn: Callable[[QmarkConnection], T], *, snapshot: bool = False) -> T: ...

    async def stage_insert(self, reads: int, data: bytes) -> None: ...

    async def staged_waiting(self) -> bool: ...

    async def chain_unit(self, unit: Callable[[Any], T]) -> T: ...


def _stream_rows(conn: QmarkConnection) -> Iterator[tuple[Any, ...]]:
    """All chain rows in seq order, through a server-side cursor (a long chain is not loaded at once)."""
    with conn.raw.cursor(name="kzfhir_audit_verify") as cur:
        cur.itersize = 2000
        cur.execute(SELECT_SQL)
        yield from decoded(cur)


_ARCHIVED = ("SELECT name, lower, upper, rows, first_seq, last_seq, last_hash, templates FROM archived_partitions "
             "WHERE parent = 'audit_chain' AND rows > 0 ORDER BY first_seq")


def archived_prefix(conn: QmarkConnection) -> tuple[ChainStart | None, str | None, str | None]:
    """(where verification starts, what was archived, a problem) from ``archived_partitions``: the
    archived runs must be contiguous from seq 1, or the record itself was tampered with."""
    rows = conn.raw.execute(_ARCHIVED).fetchall()
    if not rows:
        return None, None, None
    expected, templates = 1, set[int]()
    for _, _, _, _, first, last, _, kept in rows:
        if first != expected:
            return None, None, f"archived_partitions does not cover the chain contiguously at seq {expected}"
        expected = int(last) + 1
        templates.update(int(t) for t in str(kept).split())
    last_row = rows[-1]
    names = ", ".join(str(r[0]) for r in rows)
    told = (f"seq 1-{last_row[5]} (chained {rows[0][1]} to {last_row[2]}) archived in {names}, "
            f"verified when archived; the chain is checked from seq {int(last_row[5]) + 1}")
    return ChainStart(int(last_row[5]), str(last_row[6]), frozenset(templates)), told, None


def verify_connection(conn: QmarkConnection, rules: ChainRules, anchors: Mapping[int, str] | None) -> ChainReport:
    """Verify the chain (after its archived prefix, if any) and the patients index of its read blocks in
    the caller's snapshot."""
    duck: Any = conn
    start, archived, broken = archived_prefix(conn)
    if broken is not None:
        return ChainReport(False, 0, 0, rules.genesis, 1, broken)
    indexed = {seq: patients for seq, patients in indexed_blocks(duck).items() if start is None or seq > start.seq}
    problems: list[tuple[int, str]] = []
    report = rules.verify(_checked_rows(_stream_rows(conn), rules, indexed, index_mark(duck), problems), anchors,
                          start)
    if indexed and not problems:
        problems.append((min(indexed), "audit_patient_blocks names a read block that does not exist"))
    if report.ok and problems:
        seq, problem = problems[0]
        report = ChainReport(False, report.rows_checked, report.head_seq, report.head_hash, seq, problem)
    return dataclasses.replace(report, archived=archived) if archived else report


def archive_partitions(raw: psycopg.Connection[Any], rules: ChainRules, before: Month, *,
                       now: datetime | None = None) -> list[str]:
    """Detach the monthly partitions of ``history`` and ``audit_chain`` that end on or before the first
    day of ``before`` (a month that is over: ``before`` may not be later than the current month), oldest
    first, in one transaction; returns the detached tables, left in the database for the operator to
    dump (``pg_dump -t``) and drop. Chain months are checked first: their rows must verify as one run
    continuing what was archived before, no later row may be in an earlier month, and the newest row is
    never archived (the next append links to it). Raises :class:`ArchiveRefused` otherwise."""
    if before > month_of(now or datetime.now(UTC)):
        raise ArchiveRefused("only months that are over can be archived")
    conn = QmarkConnection(raw)
    detached: list[str] = []
    with raw.transaction():
        raw.execute("SELECT pg_advisory_xact_lock(%s)", [SCHEMA_LOCK])
        for table in ("audit_chain", "history"):
            for name, lower, upper in _partitions(raw, table):
                if upper > partition_bounds(table, before)[0]:
                    break
                if table == "audit_chain":
                    _record_chain_month(conn, rules, name, lower, upper)
                else:
                    counted = raw.execute(f"SELECT count(*) FROM {name}").fetchone()
                    raw.execute("INSERT INTO archived_partitions (name, parent, lower, upper, rows) VALUES "
                                "(%s, %s, %s, %s, %s)", [name, table, lower, upper, counted[0] if counted else 0])
                raw.execute(f"ALTER TABLE {table} DETACH PARTITION {name}")
                detached.append(name)
    return detached


def _partitions(raw: psycopg.Connection[Any], table: str) -> list[tuple[str, str, str]]:
    """The attached monthly partitions of ``table`` (name, lower, upper bound as text), oldest first."""
    found = []
    for (name,) in raw.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                               "WHERE i.inhparent = %s::regclass ORDER BY c.relname", [table]).fetchall():
        if name.startswith(f"{table}_y") and len(name) == len(table) + 9:
            month = (int(name[-7:-3]), int(name[-2:]))
            if partition_name(table, month) == name:
                found.append((name, *partition_bounds(table, month)))
    return found


def _record_chain_month(conn: QmarkConnection, rules: ChainRules, name: str, lower: str, upper: str) -> None:
    raw = conn.raw
    span = raw.execute(f"SELECT count(*), min(seq), max(seq) FROM {name}").fetchone()
    assert span is not None
    rows, first, last = int(span[0]), span[1], span[2]
    start, _, broken = archived_prefix(conn)
    if broken is not None:
        raise ArchiveRefused(broken)
    if rows == 0:
        raw.execute("INSERT INTO archived_partitions (name, parent, lower, upper, rows) VALUES (%s, 'audit_chain', "
                    "%s, %s, 0)", [name, lower, upper])
        return
    expected = 1 if start is None else start.seq + 1
    if first != expected or last - first + 1 != rows:
        raise ArchiveRefused(f"{name} holds seqs {first}-{last} ({rows} rows), not the contiguous run from seq "
                             f"{expected}: archive the months before it first")
    newer = raw.execute("SELECT EXISTS (SELECT 1 FROM audit_chain WHERE seq > %s)", [last]).fetchone()
    if newer != (True,):
        raise ArchiveRefused(f"{name} holds the chain's newest row: the next row links to it")
    with raw.cursor(name="kzfhir_audit_archive") as cur:
        cur.itersize = 2000
        cur.execute(f"SELECT seq, event_id, recorded, patient, data, prev_hash, hash FROM {name} ORDER BY seq")
        report = rules.verify(decoded(cur), None, start)
    if not report.ok:
        raise ArchiveRefused(f"{name} does not verify at seq {report.first_broken_seq}: {report.problem}")
    templates = [str(r[0]) for r in raw.execute(f"SELECT seq FROM {name} WHERE event_id = 't' || seq ORDER BY seq")]
    raw.execute("INSERT INTO archived_partitions (name, parent, lower, upper, rows, first_seq, last_seq, last_hash, "
                "templates) VALUES (%s, 'audit_chain', %s, %s, %s, %s, %s, %s, %s)",
                [name, lower, upper, rows, first, last, report.head_hash, " ".join(templates)])


def parse_month(text: str) -> Month:
    """``YYYY-MM`` as a month (``kzfhir db archive --before``); ValueError otherwise."""
    return month_of(datetime.strptime(text, "%Y-%m").replace(tzinfo=UTC))



class PgAuditLog:
    """The audit trail of one PostgreSQL store."""

    def __init__(self, store: _Backend, rules: ChainRules) -> None:
        self._store = store
        self.rules = rules
        self.stager = ReadStager(store.stage_insert)
        self._keys = TemplateKeys()
        self._chaining: asyncio.Lock | None = None

    def journal_reads(self, lines: bytes) -> bool:
        return False  # no journal file: the read gate stages the lines instead (stage_reads)

    async def stage_reads(self, lines: bytes) -> None:
        """``storage.audit.ReadStaging``: the lines in a committed ``read_audit`` row on return (read_audit.py)."""
        await self.stager.stage(lines)

    async def sync(self) -> None:
        """Chain every read staged so far, by any process (before audit data is read). One chaining at a
        time per process; units of other processes queue on ``store_head`` and find what is left."""
        if not await self._store.staged_waiting():
            return
        if self._chaining is None:
            self._chaining = asyncio.Lock()
        async with self._chaining:
            while await self._store.chain_unit(lambda view: chain_staged(view, self._keys, self.rules)) >= CLAIM_ROWS:
                pass

    async def events(self, patient: str | None, limit: int, before: int | None = None
                     ) -> list[tuple[int, dict[str, Any]]]:
        await self.sync()
        return await self._store.run_query(lambda conn: audit_rows(conn, self.rules, patient, limit, before),  # type: ignore[arg-type]
                                          snapshot=True)

    async def block_events(self, block_seq: int, patient: str) -> list[dict[str, Any]]:
        return await self._store.run_query(lambda conn: block_events(conn, self.rules, block_seq, patient))  # type: ignore[arg-type]

    async def event(self, event_id: str) -> tuple[int, bytes] | None:
        await self.sync()
        return await self._store.run_query(lambda conn: audit_event_row(conn, self.rules, event_id))  # type: ignore[arg-type]

    async def verify(self, anchors: Mapping[int, str] | None = None) -> ChainReport:
        await self.sync()
        return await self._store.run_query(lambda conn: verify_connection(conn, self.rules, anchors), snapshot=True)
