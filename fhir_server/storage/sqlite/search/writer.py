"""Write and delete one resource's index rows inside the store's write transaction (ingest hot path:
one ``executemany`` per non-empty table, after one ranged delete per table)."""

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
            "INSERT INTO sp_compartment VALUES (?,?,?,?)",
            [(rid, resource_type, comp_type, comp_id) for comp_type, comp_id in rows.compartments],
        )
