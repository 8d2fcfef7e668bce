"""``run_search``: execute a planned search on a reader connection (synchronous; the store runs it
in a worker thread)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import orjson

from fhir_server.search.cursor import encode_cursor
from fhir_server.search.errors import SearchError
from fhir_server.search.query import Cursor, SearchMatch, SearchQuery, SearchResult
from fhir_server.storage.sqlite.search.clauses_sql import SqlContext
from fhir_server.storage.sqlite.search.dialect import SQLITE, Dialect
from fhir_server.storage.sqlite.search.planner import plan_count, plan_page
from fhir_server.storage.sqlite.search.values_sql import Lookup

_T = TypeVar("_T")


def _lookup(conn: Any) -> Lookup:
    """Find a stored ValueSet/CodeSystem by canonical URL (for :in, :above, :below)."""

    def lookup(resource_type: str, url: str) -> dict[str, Any] | None:
        row = conn.execute(
            "SELECT r.data FROM sp_uri u JOIN resources r ON r.rid = u.rid WHERE u.type = ? AND u.param = 'url' "
            "AND u.value = ? AND r.deleted = 0 ORDER BY r.last_updated DESC LIMIT 1",
            (resource_type, url),
        ).fetchone()
        return orjson.loads(row[0]) if row is not None else None

    return lookup


@dataclass(slots=True)
class _Page:
    rows: list[tuple[Any, ...]]  # (rid, type, id, sort keys ...)
    more: bool
    n_keys: int
    reverse: bool
    total: int | None  # from the window count, when the plan computed it


def _wants_total(query: SearchQuery) -> bool:
    return query.summary == "count" or query.total in (None, "accurate")


def _page(conn: Any, query: SearchQuery, ctx: SqlContext) -> _Page:
    plan = plan_page(query, ctx, want_total=_wants_total(query))
    rows = conn.execute(plan.sql, plan.args).fetchall()
    total = (int(rows[0][-1]) if rows else 0) if plan.counts else None
    more = len(rows) > query.count
    rows = rows[: query.count]
    if plan.reverse:
        rows.reverse()
    return _Page(rows, more, plan.n_keys, plan.reverse, total)


def _data(conn: Any, rows: list[tuple[Any, ...]], dialect: Dialect) -> dict[int, tuple[bytes, str | None]]:
    """The JSON and compartment patients of the page's resources, read after sorting so that only the
    page's blobs are touched."""
    if not rows:
        return {}
    rids = orjson.dumps([r[0] for r in rows]).decode()
    found = conn.execute(f"SELECT rid, data, patients FROM resources WHERE rid IN ({dialect.int_list})", [rids])
    return {rid: (data, patients) for rid, data, patients in found}


def _cursor(row: tuple[Any, ...], n_keys: int, direction: str, total: int | None) -> str:
    keys = tuple(row[3 : 3 + n_keys])
    return encode_cursor(Cursor("next" if direction == "next" else "prev", keys, row[1], row[2], total))


def run_search(conn: sqlite3.Connection, query: SearchQuery) -> SearchResult:
    """Matches of one page, the total per ``_total``, and paging cursors. Includes are not followed here:
    the access session asks for them one round at a time (``include_round``), from what the caller may
    see (security/paging.py).

    The statements run in one read transaction, so page, data and total see one snapshot (WAL readers
    never block the writer)."""
    if conn.in_transaction:
        return within_limits(_run, conn, query)
    conn.execute("BEGIN")
    try:
        return within_limits(_run, conn, query)
    finally:
        conn.execute("COMMIT")


# SQLite's compile-time limits (sqlite.org/limits.html). parse_limits keeps queries well inside them;
# should a combination still reach one, it is the client's oversized query, not a server fault.
_LIMIT_MESSAGES = ("too large", "too many", "too complex", "too big", "stack overflow")


def within_limits(run: Callable[[sqlite3.Connection, SearchQuery], _T], conn: sqlite3.Connection,
                  query: SearchQuery) -> _T:
    try:
        return run(conn, query)
    except (sqlite3.OperationalError, sqlite3.DataError, OverflowError) as exc:
        if isinstance(exc, sqlite3.OperationalError) and not any(m in str(exc) for m in _LIMIT_MESSAGES):
            raise
        raise SearchError("_query", f"the search is too large for the store to run ({exc}); use fewer or "
                          "shorter parameters (docs/limits.md)", code="too-costly") from None


def _run(conn: Any, query: SearchQuery, dialect: Dialect = SQLITE) -> SearchResult:
    """One page of a search on ``conn`` (a sqlite3 connection, or any with its ``execute`` and ``?``
    placeholders: storage/postgres/conn.py), in the caller's read transaction."""
    ctx = SqlContext(_lookup(conn), dialect=dialect)
    page = _Page([], False, 0, False, None)
    if query.summary != "count" and query.count > 0:
        page = _page(conn, query, ctx)
    data = _data(conn, page.rows, dialect)
    matches = [SearchMatch(r[0], r[1], r[2], data[r[0]][0], "match", data[r[0]][1]) for r in page.rows]
    total = page.total if page.total is not None else _total(conn, query, ctx, len(matches), page.more)
    next_cursor = prev_cursor = None
    if page.rows:
        carried = total if query.total is None else None
        if page.more or page.reverse:
            next_cursor = _cursor(page.rows[-1], page.n_keys, "next", carried)
        if (page.more and page.reverse) or (query.cursor is not None and not page.reverse):
            prev_cursor = _cursor(page.rows[0], page.n_keys, "prev", carried)
    return SearchResult(tuple(matches), total, next_cursor, prev_cursor)


def _total(conn: Any, query: SearchQuery, ctx: SqlContext, n_matches: int, more: bool) -> int | None:
    if query.total == "none" and query.summary != "count":
        return None
    if query.total is None and query.cursor is not None and query.cursor.total is not None:
        return query.cursor.total  # counted on the first page (the default _total is not "accurate")
    if query.cursor is None and not more and query.count > 0 and query.summary != "count":
        return n_matches  # the first page holds every match: no count query needed
    sql, args = plan_count(query, SqlContext(ctx.lookup, dialect=ctx.dialect), estimate=query.total == "estimate")
    return int(conn.execute(sql, args).fetchone()[0])


def match_ids(conn: Any, query: SearchQuery, limit: int, dialect: Dialect = SQLITE) -> list[tuple[str, str]]:
    """(type, id) of at most ``limit`` current matches, for conditional create/update/delete and
    conditional references inside transactions (runs on the writer's connection, in its transaction)."""
    def run(conn: Any, query: SearchQuery) -> list[tuple[str, str]]:
        plan = plan_page(replace(query, count=max(limit - 1, 0), sort=(), cursor=None),
                         SqlContext(_lookup(conn), dialect=dialect))
        return [(row[1], row[2]) for row in conn.execute(plan.sql, plan.args).fetchall()[:limit]]

    if dialect is not SQLITE:
        return run(conn, query)
    return within_limits(run, conn, query)
