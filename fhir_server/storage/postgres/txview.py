"""The TxView of the PostgreSQL backend: what a write unit may do inside its transaction.

The unit runs on a worker thread with one connection of the store's pool, inside a transaction that
holds ``store_head`` locked (store.py): nothing else writes until it commits, on any node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fhir_server.search.rows import IndexRows
from fhir_server.storage.audit import ChainRules
from fhir_server.storage.postgres.audit import PgAuditTx
from fhir_server.storage.postgres.conn import QmarkConnection
from fhir_server.storage.protocols import StoredResource, StoreError
from fhir_server.storage.sqlite import outbox
from fhir_server.storage.sqlite.search.ddl import TABLES
from fhir_server.storage.sqlite.search.dialect import POSTGRES
from fhir_server.storage.sqlite.search.executor import match_ids

_DELETES = [f"DELETE FROM {t} WHERE rid = ?" for t in TABLES]
_INSERTS = {  # the SQLite index tables' columns, then the compartment key (schema.py)
    "tokens": "INSERT INTO sp_token VALUES (?,?,?,?,?,?,?,?,?)",
    "strings": "INSERT INTO sp_string VALUES (?,?,?,?,?,?,?,?)",
    "dates": "INSERT INTO sp_date VALUES (?,?,?,?,?,?,?,?)",
    "numbers": "INSERT INTO sp_number VALUES (?,?,?,?,?,?,?,?)",
    "quantities": "INSERT INTO sp_quantity VALUES (?,?,?,?,?,?,?,?,?,?,?)",
    "references": "INSERT INTO sp_reference VALUES (?,?,?,?,?,?,?,?,?,?)",
    "uris": "INSERT INTO sp_uri VALUES (?,?,?,?,?,?,?)",
}
_CURRENT = "SELECT rid, version, last_updated, deleted, data, patients FROM resources WHERE type = ? AND id = ?"
_VERSION = ("SELECT h.version, h.last_updated, h.deleted, h.data, h.method, h.patients FROM history h "
            "JOIN resources r ON r.rid = h.rid WHERE r.type = ? AND r.id = ? AND h.version = ?")


def compartment_key(patients: str) -> str:
    """The patient compartment key of a version (its first patient; "" for directory resources): the
    Citus distribution column-to-be (docs/postgres.md)."""
    return patients.split(" ", 1)[0] if patients else ""


def write_index(conn: QmarkConnection, rid: int, resource_type: str, rows: IndexRows | None, pkey: str,
                *, fresh: bool = False) -> None:
    """Replace the index rows of ``rid`` (``fresh``: a new resource, which has none to delete)."""
    if not fresh:
        for sql in _DELETES:
            conn.execute(sql, [rid])
    if rows is None:
        return
    for attr, sql in _INSERTS.items():
        values = getattr(rows, attr)
        if values:
            conn.executemany(sql, [(rid, n, resource_type, *row, pkey) for n, row in enumerate(values)])
    if rows.compartments:
        conn.executemany("INSERT INTO sp_compartment VALUES (?,?,?,?,?)",
                         [(rid, resource_type, ct, cid, pkey) for ct, cid in rows.compartments])


class PgTxView:
    def __init__(self, conn: QmarkConnection, timestamp: str, next_seq: int, rules: ChainRules,
                 next_rid: int) -> None:
        self._conn = conn
        self._timestamp = timestamp
        self.next_seq = next_seq
        self.next_rid = next_rid  # row ids are handed out under the head lock too: no RETURNING round trip
        # the unit's own view of the rows it read or wrote: nothing else writes while it runs (store.py), so
        # a row read once stays true; a re-read would cost a pipeline sync
        self._rows: dict[tuple[str, str], tuple[Any, ...] | None] = {}
        self.after_commit: list[Callable[[], None]] = []
        self.written: set[str] = set()  # resource types written (changes.py: other nodes' caches)
        self.audit = PgAuditTx(conn, rules)

    @property
    def timestamp(self) -> str:
        return self._timestamp

    def _row(self, resource_type: str, resource_id: str) -> tuple[Any, ...] | None:
        key = (resource_type, resource_id)
        if key in self._rows:
            return self._rows[key]
        row: tuple[Any, ...] | None = self._conn.execute(_CURRENT, [resource_type, resource_id]).fetchone()
        self._rows[key] = row
        return row

    def current(self, resource_type: str, resource_id: str) -> StoredResource | None:
        row = self._row(resource_type, resource_id)
        if row is None:
            return None
        return StoredResource(resource_type, resource_id, row[1], row[2], bool(row[3]), row[4], "PUT", row[5])

    def version(self, resource_type: str, resource_id: str, version: int) -> StoredResource | None:
        row = self._conn.execute(_VERSION, [resource_type, resource_id, version]).fetchone()
        if row is None:
            return None
        return StoredResource(resource_type, resource_id, row[0], row[1], bool(row[2]), row[3], row[4], row[5])

    def search_ids(self, query: Any, limit: int) -> list[tuple[str, str]]:
        return match_ids(self._conn, query, limit, POSTGRES)

    def _write(self, resource_type: str, resource_id: str, version: int, data: bytes | None,
               method: str, patients: str) -> tuple[int, bool]:
        row = self._row(resource_type, resource_id)
        expected = 1 if row is None else row[1] + 1
        if version != expected:
            raise StoreError("conflict", f"{resource_type}/{resource_id}: version {version} is not the next "
                                         f"version ({expected}); the resource changed meanwhile")
        deleted = 1 if data is None else 0
        self.written.add(resource_type)
        pkey = compartment_key(patients)
        if row is None:
            rid = self.next_rid
            self.next_rid += 1
            self._conn.execute(
                "INSERT INTO resources (rid, type, id, version, last_updated, deleted, data, patients, pkey) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [rid, resource_type, resource_id, version, self._timestamp, deleted, data, patients, pkey])
        else:
            rid = int(row[0])
            self._conn.execute(
                "UPDATE resources SET version = ?, last_updated = ?, deleted = ?, data = ?, patients = ?, pkey = ? "
                "WHERE rid = ?", [version, self._timestamp, deleted, data, patients, pkey, rid])
        self._conn.execute(
            "INSERT INTO history (rid, version, type, id, last_updated, deleted, method, data, seq, patients, pkey) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [rid, version, resource_type, resource_id, self._timestamp, deleted, method, data, self.next_seq,
             patients, pkey])
        self.next_seq += 1
        self._rows[(resource_type, resource_id)] = (rid, version, self._timestamp, deleted, data, patients)
        return rid, row is None

    def put(self, resource_type: str, resource_id: str, version: int, data: bytes, index: Any,
            method: str, patients: str) -> StoredResource:
        rid, fresh = self._write(resource_type, resource_id, version, data, method, patients)
        write_index(self._conn, rid, resource_type, index, compartment_key(patients), fresh=fresh)
        return StoredResource(resource_type, resource_id, version, self._timestamp, False, data, method, patients)

    def delete(self, resource_type: str, resource_id: str, version: int, method: str) -> StoredResource:
        rid, fresh = self._write(resource_type, resource_id, version, None, method, "")
        write_index(self._conn, rid, resource_type, None, "", fresh=fresh)
        return StoredResource(resource_type, resource_id, version, self._timestamp, True, None, method, "")

    def expunge(self, resource_type: str, resource_id: str) -> int:
        """Every version and index row deleted (AC-22); PostgreSQL reclaims the dead tuples at the next
        (auto)vacuum, which the operator runs promptly after a destruction (docs/postgres.md)."""
        row = self._row(resource_type, resource_id)
        if row is None:
            return 0
        rid = row[0]
        counted = self._conn.execute("SELECT count(*) FROM history WHERE rid = ?", [rid]).fetchone()
        removed = counted[0] if counted is not None else 0
        self._conn.execute("DELETE FROM history WHERE rid = ?", [rid])
        for sql in _DELETES:
            self._conn.execute(sql, [rid])
        self._conn.execute("DELETE FROM resources WHERE rid = ?", [rid])
        return int(removed)

    def patients(self, resource_type: str, resource_id: str) -> str | None:
        row = self._row(resource_type, resource_id)
        return None if row is None or row[3] else (row[5] or "")

    def enqueue(self, topic: str, partition: str | None, key: str, payload: bytes) -> None:
        # the idempotency key makes a retried unit harmless: the same message is never queued twice
        self._conn.execute(
            "INSERT INTO outbox (topic, partition, key, payload, created, available_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (topic, key) DO NOTHING", [topic, partition, key, payload, self._timestamp, self._timestamp])

    def settle_outbox(self, ids: list[int], status: str, error: str | None, retry_at: str | None) -> None:
        # Claims are leases (store.py, outbox_due): a worker whose lease ran out may settle a message that
        # another worker has settled since. Only messages still pending are settled, so a late report never
        # turns "delivered" back into a retry or dead letter, nor counts an attempt twice.
        pending = [row[0] for row in self._conn.execute(
            "SELECT id FROM outbox WHERE id = ANY(?) AND status = 'pending' FOR UPDATE", [ids]).fetchall()]
        outbox.settle(self._conn, pending, status, self._timestamp, error, retry_at)  # type: ignore[arg-type]

    def on_commit(self, callback: Callable[[], None]) -> None:
        self.after_commit.append(callback)

    def put_job(self, job_id: str, kind: str, status: str, data: bytes) -> None:
        self._conn.execute(
            "INSERT INTO jobs (id, kind, status, updated, data) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET status = excluded.status, updated = excluded.updated, data = excluded.data",
            [job_id, kind, status, self._timestamp, data])

    def delete_job(self, job_id: str) -> None:
        self._conn.execute("DELETE FROM jobs WHERE id = ?", [job_id])

    def job(self, job_id: str) -> bytes | None:
        # FOR UPDATE: units are serialized by store_head already; the row lock keeps the read-then-put of
        # a counter atomic even for a writer that does not take the head (subscriptions/registry.py)
        row = self._conn.execute("SELECT data FROM jobs WHERE id = ? FOR UPDATE", [job_id]).fetchone()
        return bytes(row[0]) if row is not None else None
