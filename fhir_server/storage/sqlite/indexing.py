"""Bridge from the SQLite store to the search index layer (fhir_server/storage/sqlite/search).

The store calls these inside its write transaction, so index rows commit atomically with the
resource version (architecture.md, core decision 5).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from fhir_server.storage.sqlite import search as sqlite_search
from fhir_server.storage.sqlite.search import writer as index_writer


def ddl() -> list[str]:
    return list(sqlite_search.INDEX_DDL)


def write(conn: sqlite3.Connection, rid: int, resource_type: str, index: Any, *, fresh: bool = False) -> None:
    """``fresh``: the rid has no index rows yet (a new resource row), so there is nothing to replace."""
    if index is not None:
        sqlite_search.write_index(conn, rid, resource_type, index, fresh=fresh)


def queue(pending: index_writer.Pending, rid: int, resource_type: str, index: Any) -> None:
    """Queue the rows of a rid that has none (``flush`` inserts them, still inside the transaction)."""
    if index is not None:
        index_writer.queue_index(pending, rid, resource_type, index)


def flush(conn: sqlite3.Connection, pending: index_writer.Pending) -> None:
    if pending:
        index_writer.flush_index(conn, pending)


def delete(conn: sqlite3.Connection, rid: int) -> None:
    sqlite_search.delete_index(conn, rid)


def search_ids(conn: sqlite3.Connection, query: Any, limit: int) -> list[tuple[str, str]]:
    return sqlite_search.match_ids(conn, query, limit)


def run_search(conn: sqlite3.Connection, query: Any) -> Any:
    return sqlite_search.run_search(conn, query)


def include_round(conn: sqlite3.Connection, specs: Any, sources: Any, limit: int) -> Any:
    return sqlite_search.include_round(conn, specs, sources, limit)
