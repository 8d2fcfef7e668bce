"""Write and delete one resource's index rows inside the store's write transaction (ingest hot path:
one ``executemany`` per non-empty table, after one ranged delete per table). A write unit may also queue the
rows of many resources (``queue_index``) and insert them with one ``executemany`` per table (``flush_index``)."""

from __future__ import annotations

import sqlite3

from fhir_server.search.rows import IndexRows
from fhir_server.storage.sqlite.search.ddl import TABLES

_DELETES = [f"DELETE FROM {t} WHERE rid = ?" for t in TABLES]
_INSERTS = {
    "tokens": "INSERT INTO sp_token VALUES (?,?,?,?,?,?,?,?)",
    "strings": "INSERT INTO sp_string VALUES (?,?,?,?,?,?,?)",
    "dates": "INSERT INTO sp_date VALUES (?,?,?,?,?,?,?)",
    "numbers": "INSERT INTO sp_number VALUES (?,?,?,?,?,?,?)",
    "quantities": "INSERT INTO sp_quantity VALUES (?,?,?,?,?,?,?,?,?,?)",
    "references": "INSERT INTO sp_reference VALUES (?,?,?,?,?,?,?,?,?)",
    "uris": "INSERT INTO sp_uri VALUES (?,?,?,?,?,?)",
}


_COMPARTMENT = "INSERT INTO sp_compartment VALUES (?,?,?,?)"
Pending = dict[str, list[tuple[object, ...]]]  # INSERT statement -> the rows queued for it


def queue_index(pending: Pending, rid: int, resource_type: str, rows: IndexRows) -> None:
    """Queue the index rows of ``rid``, which has none yet (a new resource row, or one whose rows were
    deleted after the last ``flush_index``)."""
    for attr, sql in _INSERTS.items():
        values = getattr(rows, attr)
        if values:
            queued = pending.get(sql)
            if queued is None:
                queued = pending[sql] = []
            queued.extend([(rid, n, resource_type, *row) for n, row in enumerate(values)])
    if rows.compartments:
        queued = pending.get(_COMPARTMENT)
        if queued is None:
            queued = pending[_COMPARTMENT] = []
        queued.extend([(rid, resource_type, comp_type, comp_id) for comp_type, comp_id in rows.compartments])


def flush_index(conn: sqlite3.Connection, pending: Pending) -> None:
    """Insert what ``queue_index`` queued: one statement per table."""
    for sql, values in pending.items():
        conn.executemany(sql, values)
    pending.clear()


def delete_index(conn: sqlite3.Connection, rid: int) -> None:
    """Remove every index row of a resource (called for deletes; a deleted resource matches nothing)."""
    for sql in _DELETES:
        conn.execute(sql, (rid,))


def write_index(conn: sqlite3.Connection, rid: int, resource_type: str, rows: IndexRows, *,
                fresh: bool = False) -> None:
    """Replace the index rows of ``rid`` with ``rows`` (same transaction as the resource row); ``fresh``:
    ``rid`` has none yet, so the eight deletes are skipped (most of an ingest's statements otherwise)."""
    if not fresh:
        delete_index(conn, rid)
    for attr, sql in _INSERTS.items():
        values = getattr(rows, attr)
        if values:
            conn.executemany(sql, [(rid, n, resource_type, *row) for n, row in enumerate(values)])
    if rows.compartments:
        conn.executemany(
            _COMPARTMENT,
            [(rid, resource_type, comp_type, comp_id) for comp_type, comp_id in rows.compartments],
        )
