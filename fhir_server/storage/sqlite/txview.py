"""The TxView of the SQLite backend: what a write unit may do inside the writer's transaction."""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any

from fhir_server.storage.audit import ChainRules
from fhir_server.storage.protocols import StoredResource, StoreError
from fhir_server.storage.sqlite import indexing, outbox
from fhir_server.storage.sqlite.audit.chain import SqliteAuditTx

_HISTORY = ("INSERT INTO history (rid, version, type, id, last_updated, deleted, method, data, seq, patients) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


class SqliteTxView:
    def __init__(self, conn: sqlite3.Connection, timestamp: str, next_seq: int, rules: ChainRules) -> None:
        self._conn = conn
        self._timestamp = timestamp
        self.next_seq = next_seq
        self.after_commit: list[Any] = []
        self.audit = SqliteAuditTx(conn, rules)  # its read_blocks feed the writer's block index
        # The resource rows this unit has read or written: a write first reads the row the executor has
        # just read to resolve its target. Only this view writes ``resources`` inside the unit, and a view
        # lives for one unit (a SAVEPOINT), so the cache cannot outlive what it describes.
        self._rows: dict[tuple[str, str], tuple[Any, ...] | None] = {}
        # History rows and the index rows of new resources, inserted together (one executemany per table)
        # when the unit ends or before anything in it reads those tables (``flush``): a unit of an import
        # writes a thousand resources, and a statement per resource and table was most of its SQLite time.
        self._history: list[tuple[Any, ...]] = []
        self._index: dict[str, list[tuple[object, ...]]] = {}

    def flush(self) -> None:
        """Insert the queued history and index rows (the writer calls it at the end of every unit)."""
        if self._history:
            self._conn.executemany(_HISTORY, self._history)
            self._history = []
        indexing.flush(self._conn, self._index)

    @property
    def timestamp(self) -> str:
        return self._timestamp

    def _row(self, resource_type: str, resource_id: str) -> tuple[Any, ...] | None:
        key = (resource_type, resource_id)
        if key in self._rows:
            return self._rows[key]
        row: tuple[Any, ...] | None = self._conn.execute(
            "SELECT rid, version, last_updated, deleted, data, patients FROM resources WHERE type = ? AND id = ?",
            key,
        ).fetchone()
        self._rows[key] = row
        return row

    def current(self, resource_type: str, resource_id: str) -> StoredResource | None:
        row = self._row(resource_type, resource_id)
        if row is None:
            return None
        return StoredResource(resource_type, resource_id, row[1], row[2], bool(row[3]), row[4], "PUT", row[5])

    def version(self, resource_type: str, resource_id: str, version: int) -> StoredResource | None:
        self.flush()
        row = self._conn.execute(
            "SELECT h.version, h.last_updated, h.deleted, h.data, h.method, h.patients FROM history h "
            "JOIN resources r ON r.rid = h.rid WHERE r.type = ? AND r.id = ? AND h.version = ?",
            (resource_type, resource_id, version)).fetchone()
        if row is None:
            return None
        return StoredResource(resource_type, resource_id, row[0], row[1], bool(row[2]), row[3], row[4], row[5])

    def search_ids(self, query: Any, limit: int) -> list[tuple[str, str]]:
        self.flush()
        return indexing.search_ids(self._conn, query, limit)

    def _write(self, resource_type: str, resource_id: str, version: int, data: bytes | None,
               method: str, patients: str) -> tuple[int, bool]:
        """Write the version's rows; its rid, and whether the resource row is new (it has no index rows)."""
        row = self._row(resource_type, resource_id)
        expected = 1 if row is None else row[1] + 1
        if version != expected:
            raise StoreError("conflict", f"{resource_type}/{resource_id}: version {version} is not the next "
                                         f"version ({expected}); the resource changed meanwhile")
        deleted = 1 if data is None else 0
        if row is None:
            cur = self._conn.execute(
                "INSERT INTO resources (type, id, version, last_updated, deleted, data, patients) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (resource_type, resource_id, version, self._timestamp, deleted, data, patients),
            )
            rid = cur.lastrowid
            assert rid is not None
        else:
            rid = row[0]
            self._conn.execute(
                "UPDATE resources SET version = ?, last_updated = ?, deleted = ?, data = ?, patients = ? WHERE rid = ?",
                (version, self._timestamp, deleted, data, patients, rid),
            )
        self._history.append(
            (rid, version, resource_type, resource_id, self._timestamp, deleted, method, data, self.next_seq, patients))
        self.next_seq += 1
        self._rows[(resource_type, resource_id)] = (rid, version, self._timestamp, deleted, data, patients)
        return int(rid), row is None

    def put(self, resource_type: str, resource_id: str, version: int, data: bytes, index: Any,
            method: str, patients: str) -> StoredResource:
        rid, new = self._write(resource_type, resource_id, version, data, method, patients)
        if new:  # a new row's rid has no index rows (rids are reused only after an expunge, which removes them)
            indexing.queue(self._index, rid, resource_type, index)
        else:
            self.flush()  # rows of this rid queued earlier in the unit are replaced, not added to
            indexing.write(self._conn, rid, resource_type, index)
        return StoredResource(resource_type, resource_id, version, self._timestamp, False, data, method, patients)

    def delete(self, resource_type: str, resource_id: str, version: int, method: str) -> StoredResource:
        rid, new = self._write(resource_type, resource_id, version, None, method, "")
        if not new:
            self.flush()
            indexing.delete(self._conn, rid)
        return StoredResource(resource_type, resource_id, version, self._timestamp, True, None, method, "")

    def expunge(self, resource_type: str, resource_id: str) -> int:
        """Every version and index row, removed with ``secure_delete`` (freed space is zeroed, not left in the
        file's free pages); after the commit the WAL is checkpointed and truncated, so the old page images leave
        the WAL file too (AC-22)."""
        row = self._row(resource_type, resource_id)
        if row is None:
            return 0
        rid = row[0]
        self.flush()
        self._rows.pop((resource_type, resource_id), None)
        self._conn.execute("PRAGMA secure_delete = ON")
        try:
            removed = self._conn.execute("DELETE FROM history WHERE rid = ?", (rid,)).rowcount
            indexing.delete(self._conn, rid)
            self._conn.execute("DELETE FROM resources WHERE rid = ?", (rid,))
        finally:
            self._conn.execute("PRAGMA secure_delete = OFF")
        conn = self._conn

        def checkpoint() -> None:
            with contextlib.suppress(sqlite3.Error):  # busy readers leave frames: the next checkpoint takes them
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

        self.after_commit.append(checkpoint)
        return int(removed)

    def patients(self, resource_type: str, resource_id: str) -> str | None:
        """The stored compartment patients of a current resource ("" none), None if not stored or deleted."""
        key = (resource_type, resource_id)
        if key in self._rows:
            known = self._rows[key]
            return None if known is None or known[3] else (known[5] or "")
        row = self._conn.execute("SELECT patients, deleted FROM resources WHERE type = ? AND id = ?",
                                 key).fetchone()
        return None if row is None or row[1] else (row[0] or "")

    def enqueue(self, topic: str, partition: str | None, key: str, payload: bytes) -> None:
        outbox.enqueue(self._conn, topic, partition, key, payload, self._timestamp)

    def settle_outbox(self, ids: list[int], status: str, error: str | None, retry_at: str | None) -> None:
        outbox.settle(self._conn, ids, status, self._timestamp, error, retry_at)

    def on_commit(self, callback: Any) -> None:
        self.after_commit.append(callback)

    def put_job(self, job_id: str, kind: str, status: str, data: bytes) -> None:
        self._conn.execute(
            "INSERT INTO jobs (id, kind, status, updated, data) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET status = excluded.status, updated = excluded.updated, data = excluded.data",
            (job_id, kind, status, self._timestamp, data),
        )

    def delete_job(self, job_id: str) -> None:
        self._conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def job(self, job_id: str) -> bytes | None:
        row = self._conn.execute("SELECT data FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return bytes(row[0]) if row is not None else None
