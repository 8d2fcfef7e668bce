"""Does one resource match a search? The search planner's own SQL, run over that resource alone.

The access policy asks this for SMART v2 granular scopes (``patient/Observation.rs?category=…``,
security/policy/granular.py) about versions the store's index does not hold (an old version, the
version a write is about to store, an included resource): the answer must be the one a search would
give, so it comes from the one planner (clauses_sql.py, values_sql.py) over the rows the one indexer
extracts (search/indexer.py), in a private in-memory SQLite database per thread — not from a second
matcher. The composition root (fhir_server/backends.py) hands this function to the policy.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace
from typing import Any

from fhir_server.search.dates import date_range, format_instant
from fhir_server.search.indexer import get_indexer
from fhir_server.search.query import SearchQuery
from fhir_server.storage.sqlite.search.clauses_sql import SqlContext
from fhir_server.storage.sqlite.search.ddl import INDEX_DDL
from fhir_server.storage.sqlite.search.planner import plan_page
from fhir_server.storage.sqlite.search.writer import write_index

_RESOURCES = """CREATE TABLE resources (rid INTEGER PRIMARY KEY, type TEXT NOT NULL, id TEXT NOT NULL,
    version INTEGER NOT NULL, last_updated TEXT NOT NULL, deleted INTEGER NOT NULL, data BLOB, patients TEXT)"""
_local = threading.local()


def _connection() -> sqlite3.Connection:
    conn: sqlite3.Connection | None = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=True)
        for ddl in (_RESOURCES, *INDEX_DDL):
            conn.execute(ddl)
        _local.conn = conn
    return conn


def _last_updated(resource: dict[str, Any]) -> str:
    """``meta.lastUpdated`` in the column's form (the store writes ``format_instant`` of the unit's time)."""
    value = (resource.get("meta") or {}).get("lastUpdated")
    if isinstance(value, str):
        bounds = date_range(value)
        if bounds is not None:
            return format_instant(bounds[0])
    return ""


def resource_matches(query: SearchQuery, resource: dict[str, Any]) -> bool:
    """True when ``resource`` is one of the matches of ``query`` (its clauses; paging and controls aside).
    Raises ``SearchError`` as a search would (an unknown value set for ``:in``, say)."""
    resource_type = str(resource.get("resourceType"))
    if query.resource_types and resource_type not in query.resource_types:
        return False
    rows = get_indexer().extract(resource)
    conn = _connection()
    conn.execute("BEGIN")
    try:
        conn.execute("INSERT INTO resources VALUES (1, ?, ?, 1, ?, 0, NULL, NULL)",
                     (resource_type, str(resource.get("id") or ""), _last_updated(resource)))
        write_index(conn, 1, resource_type, rows)
        plan = plan_page(replace(query, count=1, sort=(), cursor=None, includes=()), SqlContext(None))
        return bool(conn.execute(plan.sql, plan.args).fetchall())
    finally:
        conn.execute("ROLLBACK")
