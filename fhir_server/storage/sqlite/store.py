"""The embedded SQLite store: one file, WAL, a single group-commit writer, concurrent readers."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson

from fhir_server.security.audit.chain import index_mark, special_row
from fhir_server.security.audit.read_blocks import EVENT_ID, BlockView, block_patients, parse_block, position, seq_of
from fhir_server.storage.protocols import HistoryPage, HistoryQuery, OutboxItem, StoredResource
from fhir_server.storage.sqlite import indexing, outbox
from fhir_server.storage.sqlite.audit_journal import AuditJournal
from fhir_server.storage.sqlite.history import query_history
from fhir_server.storage.sqlite.schema import connect, create_schema
from fhir_server.storage.sqlite.writer import GroupCommitWriter

T = TypeVar("T")

_READ = "SELECT version, last_updated, deleted, data, patients FROM resources WHERE type = ? AND id = ?"
_VREAD = ("SELECT h.version, h.last_updated, h.deleted, h.data, h.method, h.patients FROM history h "
          "JOIN resources r ON r.rid = h.rid WHERE r.type = ? AND r.id = ? AND h.version = ?")


class SqliteStore:
    """Implements :class:`fhir_server.storage.protocols.Store` on one SQLite file."""

    def __init__(self, path: Path | str, *, synchronous_full: bool = True, max_batch: int = 256,
                 read_threads: int = 4) -> None:
        self.path = str(path)
        self._sync_full = synchronous_full
        self._max_batch = max_batch
        self._read_threads = read_threads
        self._writer: GroupCommitWriter | None = None
        self._loop_conn: sqlite3.Connection | None = None
        self._journal: AuditJournal | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._all_conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------------
    async def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = connect(self.path, synchronous_full=self._sync_full)
        create_schema(conn, indexing.ddl())
        next_seq, last_micros = self._resume_point(conn)
        if self.path != ":memory:":
            self._journal = AuditJournal(self.path)
            self._journal.open()
        self._writer = GroupCommitWriter(conn, max_batch=self._max_batch, next_seq=next_seq,
                                         last_micros=last_micros, synchronous_full=self._sync_full,
                                         journal=self._journal)
        self._writer.start()
        self._loop_conn = connect(self.path, synchronous_full=self._sync_full)
        self._pool = ThreadPoolExecutor(self._read_threads, thread_name_prefix="kzfhir-sqlite-read")

    @staticmethod
    def _resume_point(conn: sqlite3.Connection) -> tuple[int, int]:
        seq, last = conn.execute("SELECT COALESCE(MAX(seq), 0), MAX(last_updated) FROM history").fetchone()
        micros = 0
        if last:
            dt = datetime.strptime(last, "%Y-%m-%dT%H:%M:%S.%fZ")
            micros = int((dt - datetime(1970, 1, 1)).total_seconds() * 1_000_000)  # naive, read as UTC
        return int(seq) + 1, micros

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._writer.stop)
            self._writer = None
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        with self._conns_lock:
            for c in self._all_conns:
                c.close()
            self._all_conns.clear()
        if self._loop_conn is not None:
            self._loop_conn.close()
            self._loop_conn = None

    # -- writes ------------------------------------------------------------------------------------
    async def transaction(self, unit: Callable[[Any], T], *, relaxed: bool = False) -> T:
        if self._writer is None:
            raise RuntimeError("store is not open")
        result: T = await self._writer.submit(unit, relaxed=relaxed)
        return result

    def journal_reads(self, lines: bytes) -> bool:
        """Append read-audit lines to the journal (storage/sqlite/audit_journal.py); False when this
        store keeps none (in memory): then commit them as a unit instead."""
        if self._journal is None:
            return False
        self._journal.append(lines)
        return True

    async def sync_audit(self) -> None:
        """Chain every read journaled so far, before audit data is read."""
        if self._journal is not None and self._journal.pending:
            await self.transaction(lambda view: None, relaxed=True)

    # -- reads -------------------------------------------------------------------------------------
    def _thread_conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, synchronous_full=self._sync_full)
            self._local.conn = conn
            with self._conns_lock:
                self._all_conns.append(conn)
        return conn

    async def _in_reader(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(self._thread_conn()))

    async def read(self, resource_type: str, resource_id: str) -> StoredResource | None:
        # A primary-key lookup takes microseconds: run it on the loop's own connection rather than pay
        # a thread hop; WAL lets it proceed while the writer commits.
        assert self._loop_conn is not None
        row = self._loop_conn.execute(_READ, (resource_type, resource_id)).fetchone()
        if row is None:
            return None
        return StoredResource(resource_type, resource_id, row[0], row[1], bool(row[2]), row[3], "PUT", row[4])

    async def vread(self, resource_type: str, resource_id: str, version: int) -> StoredResource | None:
        assert self._loop_conn is not None
        row = self._loop_conn.execute(_VREAD, (resource_type, resource_id, version)).fetchone()
        if row is None:
            return None
        return StoredResource(resource_type, resource_id, row[0], row[1], bool(row[2]), row[3], row[4], row[5])

    async def history(self, query: HistoryQuery) -> HistoryPage:
        return await self._in_reader(lambda conn: query_history(conn, query))

    async def search(self, query: Any) -> Any:
        return await self._in_reader(lambda conn: indexing.run_search(conn, query))

    async def include(self, specs: Any, sources: Any, limit: int) -> Any:
        return await self._in_reader(lambda conn: indexing.include_round(conn, specs, sources, limit))

    async def search_ids(self, query: Any, limit: int) -> list[tuple[str, str]]:
        return await self._in_reader(lambda conn: indexing.search_ids(conn, query, limit))

    async def run_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a backend-specific read on a reader thread (used by backend-specific modules only)."""
        return await self._in_reader(fn)

    @property
    def writer_stats(self) -> tuple[int, int]:
        """(commits, units) so far: units/commits is the group-commit factor."""
        return (self._writer.commits, self._writer.units) if self._writer else (0, 0)

    # -- outbox and audit reads ------------------------------------------------------------------
    async def outbox_due(self, topic: str, now: str, limit: int) -> list[OutboxItem]:
        return await self._in_reader(lambda conn: outbox.due(conn, topic, now, limit))

    async def outbox_partition(self, topic: str, partition: str, limit: int,
                               before_id: int | None = None) -> list[OutboxItem]:
        return await self._in_reader(lambda conn: outbox.by_partition(conn, topic, partition, limit, before_id))

    async def audit_events(self, patient: str | None, limit: int, before_seq: int | None = None
                           ) -> list[tuple[int, dict[str, Any]]]:
        await self.sync_audit()
        return await self._in_reader(lambda conn: audit_rows(conn, patient, limit, before_seq))

    async def get_job(self, job_id: str) -> tuple[str, str, str, bytes] | None:
        def fetch(conn: sqlite3.Connection) -> tuple[str, str, str, bytes] | None:
            row = conn.execute("SELECT kind, status, updated, data FROM jobs WHERE id = ?", (job_id,)).fetchone()
            return (row[0], row[1], row[2], bytes(row[3])) if row else None

        return await self._in_reader(fetch)

    async def list_jobs(self, kind: str, status: str) -> list[tuple[str, bytes]]:
        def fetch(conn: sqlite3.Connection) -> list[tuple[str, bytes]]:
            rows = conn.execute("SELECT id, data FROM jobs WHERE kind = ? AND status = ?", (kind, status))
            return [(r[0], bytes(r[1])) for r in rows]

        return await self._in_reader(fetch)

    async def audit_block_events(self, block_seq: int, patient: str) -> list[dict[str, Any]]:
        def fetch(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            data = special_row(conn, "r", block_seq)
            if data is None:
                return []
            return [event for _, event in reversed(list(BlockView(block_seq, data, _templates(conn)).events(patient)))]

        return await self._in_reader(fetch)

    async def audit_event(self, event_id: str) -> tuple[int, bytes] | None:
        await self.sync_audit()
        return await self._in_reader(lambda conn: audit_event_row(conn, event_id))


def audit_event_row(conn: sqlite3.Connection, event_id: str) -> tuple[int, bytes] | None:
    found = EVENT_ID.match(event_id)
    if found is not None:  # an event of a read block: r{seq}-{index}
        seq, index = int(found.group(1)), int(found.group(2))
        block = special_row(conn, "r", seq)
        if block is None:
            return None
        view = BlockView(seq, block, _templates(conn))
        if index >= len(view):
            return None
        return position(seq, index), orjson.dumps(view.event(index))
    row = conn.execute("SELECT seq, data FROM audit_chain WHERE event_id = ?", (event_id,)).fetchone()
    if row is None or event_id in (f"t{row[0]}", f"r{row[0]}"):  # templates and whole blocks are not events
        return None
    return position(int(row[0])), bytes(row[1])


def _templates(conn: sqlite3.Connection) -> Callable[[int], bytes]:
    """Read templates by chain seq, each fetched once per query."""
    cache: dict[int, bytes] = {}

    def template(seq: int) -> bytes:
        if seq not in cache:
            cache[seq] = special_row(conn, "t", seq) or b"{}"
        return cache[seq]

    return template


def audit_rows(conn: sqlite3.Connection, patient: str | None, limit: int, before: int | None
               ) -> list[tuple[int, dict[str, Any]]]:
    """Newest first, ``limit`` events below position ``before``: single-event rows and the records
    of read blocks (for a patient: rows with that patient, and blocks indexed for them)."""
    found: list[tuple[int, dict[str, Any]]] = []
    templates = _templates(conn)
    below = seq_of(before) + 1 if before is not None else None  # rows up to the cursor's own row
    while len(found) < limit:
        rows = _chain_rows(conn, patient, limit, below)
        for seq, event_id, data in rows:
            if event_id == f"r{seq}":
                events = BlockView(seq, bytes(data), templates).events(patient)
            elif event_id == f"t{seq}":
                continue  # a read template: part of the events of the blocks that name it, not one itself
            else:
                events = iter([(position(seq), orjson.loads(bytes(data)))])
            for pos, event in events:
                if before is None or pos < before:
                    found.append((pos, event))
        if len(rows) < limit:
            break
        below = rows[-1][0]
    return found[:limit]


def _chain_rows(conn: sqlite3.Connection, patient: str | None, limit: int, below: int | None
                ) -> list[tuple[int, str, bytes]]:
    """Up to ``limit`` chain rows below seq ``below``, newest first; for a patient, the rows that
    hold an event about them."""
    cap = "seq < ?" if below is not None else "1"
    cap_args: list[Any] = [below] if below is not None else []
    if patient is None:
        sql = f"SELECT seq, event_id, data FROM audit_chain WHERE {cap} ORDER BY seq DESC LIMIT ?"
        return conn.execute(sql, [*cap_args, limit]).fetchall()
    seqs = _patient_seqs(conn, patient, limit, below)
    if not seqs:
        return []
    marks = ",".join("?" * len(seqs))
    return conn.execute(f"SELECT seq, event_id, data FROM audit_chain WHERE seq IN ({marks}) ORDER BY seq DESC",
                        seqs).fetchall()


def _patient_seqs(conn: sqlite3.Connection, patient: str, limit: int, below: int | None) -> list[int]:
    """Newest ``limit`` seqs below ``below`` of rows about ``patient``: single events by the indexed
    column, read blocks through ``audit_patient_blocks`` up to its mark, and above it by scanning."""
    top = below if below is not None else 2**62
    seqs = [int(r[0]) for r in conn.execute(
        "SELECT seq FROM audit_chain WHERE patient = ? AND seq < ? ORDER BY seq DESC LIMIT ?", (patient, top, limit))]
    mark = index_mark(conn)
    needle = orjson.dumps(patient.removeprefix("Patient/")) + b"]"
    for seq, data in conn.execute("SELECT seq, data FROM audit_chain WHERE seq > ? AND seq < ? "
                                  "AND event_id = 'r' || seq", (mark, top)):
        if needle in data and f"Patient/{patient.removeprefix('Patient/')}" in block_patients(parse_block(data)):
            seqs.append(int(seq))
    found = 0
    for (listed,) in conn.execute("SELECT seqs FROM audit_patient_blocks WHERE patient = ? AND first_seq < ? "
                                  "ORDER BY last_seq DESC", (patient, top)):
        fits = [int(x) for x in str(listed).split() if int(x) < top]
        seqs += fits
        found += len(fits)
        if found >= limit:
            break
    return sorted(set(seqs), reverse=True)[:limit]
