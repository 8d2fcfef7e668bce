"""The embedded SQLite store: one file, WAL, a single group-commit writer, concurrent readers."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fhir_server.storage.audit import ChainRules
from fhir_server.storage.protocols import HistoryPage, HistoryQuery, OutboxItem, StoredResource
from fhir_server.storage.sqlite import indexing, lock, outbox
from fhir_server.storage.sqlite.audit.journal import AuditJournal
from fhir_server.storage.sqlite.audit.log import SqliteAuditLog
from fhir_server.storage.sqlite.history import query_history
from fhir_server.storage.sqlite.schema import connect, create_schema
from fhir_server.storage.sqlite.writer import GroupCommitWriter

T = TypeVar("T")

_READ = "SELECT version, last_updated, deleted, data, patients FROM resources WHERE type = ? AND id = ?"
_VREAD = ("SELECT h.version, h.last_updated, h.deleted, h.data, h.method, h.patients FROM history h "
          "JOIN resources r ON r.rid = h.rid WHERE r.type = ? AND r.id = ? AND h.version = ?")


class SqliteStore:
    """Implements :class:`fhir_server.storage.protocols.Store` on one SQLite file; its audit trail
    (``audit``, storage/sqlite/audit/) keeps the chain by ``rules`` (fhir_server/backends.py injects them)."""

    def __init__(self, path: Path | str, *, rules: ChainRules, synchronous_full: bool = True, max_batch: int = 256,
                 read_threads: int = 4) -> None:
        self.path = str(path)
        self._rules = rules
        self.audit = SqliteAuditLog(self, rules)
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
        self._locked = False

    # -- lifecycle ---------------------------------------------------------------------------------
    async def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            lock.acquire(self.path)  # one process per file (storage/sqlite/lock.py)
            self._locked = True
        conn = connect(self.path, synchronous_full=self._sync_full)
        create_schema(conn, indexing.ddl(), self._rules)
        next_seq, last_micros = self._resume_point(conn)
        if self.path != ":memory:":
            self._journal = AuditJournal(self.path)
            self._journal.open()
        self.audit.journal = self._journal
        self._writer = GroupCommitWriter(conn, rules=self._rules, max_batch=self._max_batch, next_seq=next_seq,
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
            self.audit.journal = None
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
        if self._locked:
            self._locked = False
            lock.release(self.path)

    # -- writes ------------------------------------------------------------------------------------
    async def transaction(self, unit: Callable[[Any], T], *, relaxed: bool = False) -> T:
        if self._writer is None:
            raise RuntimeError("store is not open")
        result: T = await self._writer.submit(unit, relaxed=relaxed)
        return result

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

    # -- outbox and jobs ---------------------------------------------------------------------------
    async def outbox_due(self, topic: str, now: str, limit: int) -> list[OutboxItem]:
        return await self._in_reader(lambda conn: outbox.due(conn, topic, now, limit))

    async def outbox_partition(self, topic: str, partition: str, limit: int,
                               before_id: int | None = None) -> list[OutboxItem]:
        return await self._in_reader(lambda conn: outbox.by_partition(conn, topic, partition, limit, before_id))

    async def outbox_by_status(self, topic: str, status: str, limit: int,
                               before_id: int | None = None) -> list[OutboxItem]:
        return await self._in_reader(lambda conn: outbox.by_status(conn, topic, status, limit, before_id))

    async def outbox_counts(self, topics: list[str]) -> list[tuple[str, str, int]]:
        return await self._in_reader(lambda conn: outbox.counts(conn, topics))

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


if TYPE_CHECKING:  # mypy holds the backend to the protocols it implements
    from fhir_server.storage.audit import AuditLog, AuditTx
    from fhir_server.storage.protocols import Store, TxView
    from fhir_server.storage.sqlite.txview import SqliteTxView

    def _implements(store: SqliteStore, view: SqliteTxView) -> tuple[Store, TxView, AuditLog, AuditTx]:
        return store, view, store.audit, view.audit
