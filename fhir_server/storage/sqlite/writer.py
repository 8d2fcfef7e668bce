"""The single writer of the SQLite store, with group commit.

All write units go through one thread and one connection. The thread takes every unit queued while
the previous commit was running and applies them in one SQLite transaction, each inside its own
SAVEPOINT: a unit that raises is rolled back alone, the others commit together with one fsync
(architecture.md, core decision 4). A unit's future is resolved only after COMMIT returned, so an
acknowledged write is durable (WAL; synchronous=FULL by default).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fhir_server.storage.audit import ChainRules
from fhir_server.storage.sqlite.audit.index import index_blocks, index_mark, unindexed_blocks
from fhir_server.storage.sqlite.audit.journal import INGEST_SECONDS, AuditJournal, TemplateCache
from fhir_server.storage.sqlite.txview import SqliteTxView

log = logging.getLogger(__name__)
#: Read blocks are indexed by patient in rounds (storage/sqlite/audit/index.py ``index_blocks``).
INDEX_SECONDS = 1.0
INDEX_MAX_BLOCKS = 4096
MAINTENANCE_SECONDS = INGEST_SECONDS  # idle ticks: chain the read-audit journal this often


def _stamp(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(slots=True)
class _Job:
    unit: Callable[[SqliteTxView], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    relaxed: bool = False


def _resolve(job: _Job, result: Any, error: BaseException | None) -> None:
    if job.future.cancelled():
        return
    if error is not None:
        job.future.set_exception(error)
    else:
        job.future.set_result(result)


class GroupCommitWriter:
    """Owns the write connection; ``submit`` is called from the event loop."""

    def __init__(self, conn: sqlite3.Connection, *, rules: ChainRules, max_batch: int, next_seq: int,
                 last_micros: int, synchronous_full: bool = True, journal: AuditJournal | None = None) -> None:
        self._conn = conn
        self._rules = rules
        self._full = synchronous_full
        self._mode = "FULL" if synchronous_full else "NORMAL"
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._next_seq = next_seq
        self._last_micros = last_micros
        self._thread = threading.Thread(target=self._run, name="kzfhir-sqlite-writer", daemon=True)
        self.commits = 0
        self.units = 0
        self._callbacks: list[Any] = []
        self._new_blocks: dict[int, list[str]] = {}
        # read blocks committed but not yet in audit_patient_blocks (from before a restart too)
        self._unindexed: dict[int, list[str]] = unindexed_blocks(conn, rules, index_mark(conn))
        self._indexed_at = 0.0 if self._unindexed else time.monotonic()
        self._journal = journal
        self._template_keys = TemplateCache()  # journal template key -> chain seq

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def submit(self, unit: Callable[[SqliteTxView], Any], *, relaxed: bool = False) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._queue.put(_Job(unit, fut, loop, relaxed))
        return fut

    def _durability(self, batch: list[_Job], *, chaining: bool = False) -> None:
        """A batch of relaxed units only (read audit records) commits without fsync: it survives a
        killed process, and reaches the disk with the next full commit or checkpoint (docs/security.md).
        A commit that chains the read-audit journal is full: ingested journal files are deleted after it."""
        relaxed = all(job.relaxed for job in batch) and not chaining
        mode = "NORMAL" if not self._full or relaxed else "FULL"
        if mode != self._mode:
            self._conn.execute(f"PRAGMA synchronous={mode}")
            self._mode = mode

    # -- writer thread -----------------------------------------------------------------------------
    def _take_batch(self, first: _Job) -> tuple[list[_Job], bool]:
        batch = [first]
        stop = False
        while len(batch) < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stop = True
                break
            batch.append(item)
        return batch, stop

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=MAINTENANCE_SECONDS)
            except queue.Empty:
                self._maintain()
                continue
            if first is None:
                self._maintain(force=True)  # chain what the journal still holds before closing
                return
            batch, stop = self._take_batch(first)
            self._commit(batch)
            if stop:
                self._maintain(force=True)
                return

    def _maintain(self, *, force: bool = False) -> None:
        """When idle (or closing): chain the read-audit journal and index read blocks when due."""
        if not (force or (self._journal is not None and self._journal.pending) or self._index_due()):
            return
        try:
            self._durability([], chaining=True)
            self._conn.execute("BEGIN IMMEDIATE")
            self._new_blocks = self._ingest(force or (self._journal is not None and self._journal.pending))
            indexing = self._index_due()
            if indexing:
                index_blocks(self._conn, self._unindexed, max(self._unindexed))
            self._conn.execute("COMMIT")
        except (sqlite3.Error, ValueError):
            log.exception("chaining the read-audit journal failed; retried at the next commit")
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            return
        self._after_ingest(indexing)

    def _ingest(self, now: bool) -> dict[int, list[str]]:
        """Chain the journal when ``now`` (decided with the commit's durability, before BEGIN)."""
        if self._journal is None or not now:
            return {}
        return self._journal.ingest(self._conn, self._template_keys, self._rules)

    def _after_ingest(self, indexed: bool) -> None:
        if indexed:
            self._unindexed, self._indexed_at = {}, time.monotonic()
        self._unindexed.update(self._new_blocks)
        if self._journal is not None:
            self._journal.forget_ingested(self._conn)

    def _timestamp(self) -> str:
        micros = max(time.time_ns() // 1000, self._last_micros + 1)
        self._last_micros = micros
        return _stamp(micros)

    def _index_due(self) -> bool:
        return bool(self._unindexed) and (len(self._unindexed) >= INDEX_MAX_BLOCKS
                                          or time.monotonic() - self._indexed_at >= INDEX_SECONDS)

    def _commit(self, batch: list[_Job]) -> None:
        conn = self._conn
        outcomes: list[tuple[Any, BaseException | None]] = []
        self._callbacks = []
        self._new_blocks = {}
        indexing = self._index_due()
        try:
            chaining = self._journal is not None and self._journal.pending
            self._durability(batch, chaining=chaining)
            conn.execute("BEGIN IMMEDIATE")
            self._new_blocks = self._ingest(chaining)  # reads journaled so far: chained before what follows
            if indexing:
                index_blocks(conn, self._unindexed, max(self._unindexed))
            for job in batch:
                outcomes.append(self._apply(job))
            conn.execute("COMMIT")
            self._after_ingest(indexing)
            for callback in self._callbacks:  # after COMMIT, before any caller hears of it
                callback()
        except BaseException as exc:  # a failed COMMIT (disk full, I/O error) fails every unit in it
            log.exception("group commit failed")
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            outcomes = [(None, exc)] * len(batch)
        self.commits += 1
        self.units += len(batch)
        for job, (result, error) in zip(batch, outcomes, strict=True):
            job.loop.call_soon_threadsafe(_resolve, job, result, error)

    def _apply(self, job: _Job) -> tuple[Any, BaseException | None]:
        conn = self._conn
        conn.execute("SAVEPOINT unit")
        view = SqliteTxView(conn, self._timestamp(), self._next_seq, self._rules)
        try:
            result = job.unit(view)
            view.flush()  # the unit's queued history and index rows, inside its savepoint
        except BaseException as exc:
            conn.execute("ROLLBACK TO unit")
            conn.execute("RELEASE unit")
            return None, exc
        conn.execute("RELEASE unit")
        self._next_seq = view.next_seq
        self._callbacks.extend(view.after_commit)
        self._new_blocks.update(view.audit.read_blocks)
        return result, None
