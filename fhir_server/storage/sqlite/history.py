"""History queries (FHIR R4 http.html §3.1.0.9) over the SQLite ``history`` table.

Pages are cut by the global write sequence ``seq``, newest first; a cursor is the ``seq`` of the last
entry served, so new writes never shift a page a client is walking through.
"""

from __future__ import annotations

from typing import Any

from fhir_server.storage.protocols import HistoryPage, HistoryQuery, StoredResource
from fhir_server.storage.sqlite.search.dialect import SQLITE, Dialect

_AT_CLAUSE = (
    "h.last_updated < ? AND NOT EXISTS (SELECT 1 FROM history n WHERE n.rid = h.rid "
    "AND n.version = h.version + 1 AND n.last_updated <= ?)"
)


def _where(query: HistoryQuery, dialect: Dialect) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    if query.type is not None and query.id is not None:
        clauses.append("h.rid = (SELECT rid FROM resources WHERE type = ? AND id = ?)")
        args += [query.type, query.id]
    elif query.type is not None:
        clauses.append("h.type = ?")
        args.append(query.type)
    if query.since is not None:
        clauses.append("h.last_updated >= ?")
        args.append(query.since)
    if query.at_start is not None and query.at_end is not None:
        # the version was current at some instant of [at_start, at_end): it began before at_end and
        # was not replaced before at_start (FHIR R4 http.html §3.1.0.9 `_at`)
        clauses.append(_AT_CLAUSE)
        args += [query.at_end, query.at_start]
    return (" AND ".join(clauses) or dialect.true), args


_COLUMNS = "h.type, h.id, h.version, h.last_updated, h.deleted, h.data, h.method, h.seq, h.patients"


def query_history(conn: Any, query: HistoryQuery, dialect: Dialect = SQLITE) -> HistoryPage:
    """One page of history on ``conn`` (sqlite3, or with its ``execute``: storage/postgres/conn.py)."""
    where, args = _where(query, dialect)
    total = conn.execute(f"SELECT COUNT(*) FROM history h WHERE {where}", args).fetchone()[0]
    limit = [query.count + 1]
    if query.after_seq is not None:  # backwards: the entries just newer than the cursor, then newest first
        rows = conn.execute(f"SELECT {_COLUMNS} FROM history h WHERE {where} AND h.seq > ? "
                            "ORDER BY h.seq ASC LIMIT ?", [*args, query.after_seq, *limit]).fetchall()
        newer = len(rows) > query.count
        rows = list(reversed(rows[: query.count]))
        older = bool(rows)
    else:
        bound = " AND h.seq < ?" if query.before_seq is not None else ""
        rows = conn.execute(f"SELECT {_COLUMNS} FROM history h WHERE {where}{bound} ORDER BY h.seq DESC LIMIT ?",
                            [*args, *([query.before_seq] if bound else []), *limit]).fetchall()
        older = len(rows) > query.count
        rows = rows[: query.count]
        newer = query.before_seq is not None and bool(rows) and conn.execute(
            f"SELECT EXISTS (SELECT 1 FROM history h WHERE {where} AND h.seq > ?)", [*args, rows[0][7]]
        ).fetchone()[0] in (1, True)
    entries = [StoredResource(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6], r[8]) for r in rows]
    seqs = [r[7] for r in rows]
    return HistoryPage(entries, int(total), seqs[-1] if older and seqs else None, seqs,
                       seqs[0] if newer and seqs else None)
