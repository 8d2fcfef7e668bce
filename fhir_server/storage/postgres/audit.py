"""The audit seam (storage/audit.py) on PostgreSQL: ``audit_chain`` and ``audit_patient_blocks`` as on
SQLite, appended and read by the SQLite backend's own code through a ``?``-speaking connection
(conn.py), with the chain's rules injected.

One chain order across processes: every write unit holds ``store_head`` locked (store.py), so the head
read before an append is the head when it commits; the ``audit_chain_extend_only`` trigger refuses any
row that does not extend it. No read-audit journal (no shared memory map across nodes):
``journal_reads`` returns False and the read gate commits each read's record in a relaxed unit
(security/read_gate.py), which commits with ``synchronous_commit = off`` (it survives a crash of the
server process, not of PostgreSQL: the guarantee of SQLite's journal). Read blocks are indexed by
patient in the unit that appends them, so the index mark is always the newest block.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol, TypeVar

from fhir_server.storage.audit import ChainReport, ChainRules
from fhir_server.storage.postgres.conn import QmarkConnection
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


def _stream_rows(conn: QmarkConnection) -> Iterator[tuple[Any, ...]]:
    """All chain rows in seq order, through a server-side cursor (a long chain is not loaded at once)."""
    with conn.raw.cursor(name="kzfhir_audit_verify") as cur:
        cur.itersize = 2000
        cur.execute(SELECT_SQL)
        yield from decoded(cur)


def verify_connection(conn: QmarkConnection, rules: ChainRules, anchors: Mapping[int, str] | None) -> ChainReport:
    """Verify the chain and the patients index of its read blocks in the caller's snapshot."""
    duck: Any = conn
    indexed = indexed_blocks(duck)
    problems: list[tuple[int, str]] = []
    report = rules.verify(_checked_rows(_stream_rows(conn), rules, indexed, index_mark(duck), problems), anchors)
    if indexed and not problems:
        problems.append((min(indexed), "audit_patient_blocks names a read block that does not exist"))
    if report.ok and problems:
        seq, problem = problems[0]
        return ChainReport(False, report.rows_checked, report.head_seq, report.head_hash, seq, problem)
    return report


class PgAuditLog:
    """The audit trail of one PostgreSQL store."""

    def __init__(self, store: _Backend, rules: ChainRules) -> None:
        self._store = store
        self.rules = rules

    def journal_reads(self, lines: bytes) -> bool:
        return False  # no journal: the read gate appends each read's record in a relaxed unit

    async def sync(self) -> None:
        return None  # nothing is ever pending: records are chained by the units that carry them

    async def events(self, patient: str | None, limit: int, before: int | None = None
                     ) -> list[tuple[int, dict[str, Any]]]:
        return await self._store.run_query(lambda conn: audit_rows(conn, self.rules, patient, limit, before),  # type: ignore[arg-type]
                                          snapshot=True)

    async def block_events(self, block_seq: int, patient: str) -> list[dict[str, Any]]:
        return await self._store.run_query(lambda conn: block_events(conn, self.rules, block_seq, patient))  # type: ignore[arg-type]

    async def event(self, event_id: str) -> tuple[int, bytes] | None:
        return await self._store.run_query(lambda conn: audit_event_row(conn, self.rules, event_id))  # type: ignore[arg-type]

    async def verify(self, anchors: Mapping[int, str] | None = None) -> ChainReport:
        return await self._store.run_query(lambda conn: verify_connection(conn, self.rules, anchors), snapshot=True)
