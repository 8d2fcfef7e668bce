"""Plan a ``SearchQuery`` into SQL: the page of matches and the count.

Shape of the page query (FHIR R4 search §3.1.1.5.x paging, sorting):

    WITH m AS (SELECT DISTINCT rid FROM <driving clause>)
    SELECT r.rid, r.type, r.id, <sort keys> [, count(*) OVER ()]
    FROM m CROSS JOIN resources r ON r.rid = m.rid       -- CROSS JOIN: SQLite keeps this order
    WHERE r.deleted = 0 AND <type> AND <probes of the other clauses> AND <keyset position>
    ORDER BY <sort keys>, r.type, r.id LIMIT count + 1

Without a selective clause the type's ``(type, id)`` index is walked in order and the clauses are
probed per row, so the LIMIT stops the scan early. The keyset (sort values, type, id) replaces
offsets, which keeps pages stable under concurrent writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_server.search.query import Cursor, SearchQuery, SortKey
from fhir_server.storage.sqlite.search.clauses_sql import TABLE, SqlContext, driving, in_types, probe, strength
from fhir_server.storage.sqlite.search.values_sql import TOP, Sql

_DRIVE_THRESHOLD = 30  # weaker clauses (open date ranges, :contains ...) are probed along the scan
_BIG = 9.0e18
_SORT_COLUMN = {  # (ascending aggregate, descending aggregate) per parameter type
    "string": ("min(s.norm)", "max(s.norm)"),
    "token": ("min(s.code)", "max(s.code)"),
    "date": ("min(s.low)", "max(s.high)"),
    "number": ("min(s.low)", "max(s.high)"),
    "quantity": ("min(s.low)", "max(s.high)"),
    "reference": ("min(coalesce(s.ref_type || '/' || s.ref_id, s.url))",
                  "max(coalesce(s.ref_type || '/' || s.ref_id, s.url))"),
    "uri": ("min(s.value)", "max(s.value)"),
}
_NUMERIC = frozenset({"date", "number", "quantity"})


@dataclass(frozen=True, slots=True)
class PagePlan:
    sql: str
    args: list[Any]
    n_keys: int  # sort-key columns after rid, type, id
    reverse: bool  # rows come last-first (a "previous" page) and must be flipped
    counts: bool  # the last column is the number of all matches (window count)


def sort_expressions(keys: tuple[SortKey, ...]) -> list[Sql]:
    """One SQL expression per sort key; resources without a value sort last in either direction."""
    out: list[Sql] = []
    for key in keys:
        if key.code == "_id":
            out.append(("r.id", []))
        elif key.code == "_lastUpdated":
            out.append(("r.last_updated", []))
        else:
            agg = _SORT_COLUMN[key.type][1 if key.descending else 0]
            missing: Any = ("" if key.descending else TOP)
            if key.type in _NUMERIC:
                missing = -_BIG if key.descending else _BIG
            out.append((f"coalesce((SELECT {agg} FROM {TABLE[key.type]} s WHERE s.rid = r.rid AND s.param = ?), ?)",
                        [key.code, missing]))
    return out


def _where(query: SearchQuery, ctx: SqlContext, types: tuple[str, ...]) -> tuple[Sql | None, list[Sql]]:
    """(driving rid sub-query or None, boolean conditions on ``r``)."""
    ranked = sorted(query.clauses, key=strength, reverse=True)
    drive: Sql | None = None
    rest = list(ranked)
    if query.compartment is not None:
        comp_types = in_types("c.type", types, ctx.dialect)
        drive = (f"SELECT c.rid FROM sp_compartment c WHERE c.comp_type = ? AND c.comp_id = ? AND {comp_types[0]}",
                 [query.compartment[0], query.compartment[1], *comp_types[1]])
    elif ranked and strength(ranked[0]) >= _DRIVE_THRESHOLD:
        drive = driving(ranked[0], types, ctx)
        rest = ranked[1:] if drive is not None else ranked
    conds: list[Sql] = [("r.deleted = 0", [])]
    if drive is None:
        conds.append(in_types("r.type", types, ctx.dialect))
    # else every driving sub-query already keeps to ``types`` (clauses_sql.driving, the compartment
    # above): a second type test on ``r`` is redundant, and on PostgreSQL with statistics older than a
    # bulk load it made the planner AND the rid probe with a scan of the type's whole index per match
    # (22 ms instead of 2.7 ms for Observation?patient=X, docs/performance.md)
    conds.extend(probe(c, "r", ctx) for c in rest)
    return drive, conds


def _keyset(exprs: list[Sql], descending: list[bool], cursor: Cursor, backwards: bool) -> Sql:
    """Rows strictly after (or before) the cursor in the ORDER BY order."""
    values = [*cursor.keys, cursor.resource_type, cursor.resource_id]
    ors: list[str] = []
    args: list[Any] = []
    for i, (sql, sargs) in enumerate(exprs):
        ands: list[str] = []
        for j in range(i):
            ands.append(f"{exprs[j][0]} = ?")
            args.extend([*exprs[j][1], values[j]])
        op = ">" if descending[i] == backwards else "<"
        ands.append(f"{sql} {op} ?")
        args.extend([*sargs, values[i]])
        ors.append("(" + " AND ".join(ands) + ")")
    return "(" + " OR ".join(ors) + ")", args


def plan_page(query: SearchQuery, ctx: SqlContext, want_total: bool = False) -> PagePlan:
    """Rows (rid, type, id, sort keys[, total]) of one page, plus one row to tell whether more follow.

    With a driving clause every match is collected and sorted anyway, so ``count(*) OVER ()`` gives the
    total in the same pass (``want_total``, first page only: the keyset would limit the count)."""
    types = query.resource_types
    drive, conds = _where(query, ctx, types)
    sort = sort_expressions(query.sort)
    exprs = [*sort, ("r.type", []), ("r.id", [])]
    descending = [k.descending for k in query.sort] + [False, False]
    backwards = query.cursor is not None and query.cursor.direction == "prev"
    if query.cursor is not None:
        if len(query.cursor.keys) != len(sort):
            raise ValueError("paging cursor does not fit this query's _sort")
        conds.append(_keyset(exprs, descending, query.cursor, backwards))
    order = ", ".join(f"{e[0]} {'DESC' if d != backwards else 'ASC'}" for e, d in zip(exprs, descending, strict=True))
    counts = want_total and drive is not None and query.cursor is None
    select = ", ".join(["r.rid", "r.type", "r.id", *(e[0] for e in sort), *(["count(*) OVER ()"] if counts else [])])
    where = " AND ".join(c[0] for c in conds)
    args: list[Any] = [a for e in sort for a in e[1]]
    if drive is not None:
        sql = (f"WITH m AS (SELECT DISTINCT rid FROM ({drive[0]}) d) SELECT {select} FROM m "
               f"{ctx.dialect.ordered_join} resources r ON r.rid = m.rid WHERE {where} ORDER BY {order} LIMIT ?")
        args = [*drive[1], *args]
    else:
        sql = f"SELECT {select} FROM resources r WHERE {where} ORDER BY {order} LIMIT ?"
    args.extend(a for c in conds for a in c[1])
    args.extend(a for e in exprs for a in e[1])
    args.append(query.count + 1)
    return PagePlan(sql, args, len(sort), backwards, counts)


def plan_count(query: SearchQuery, ctx: SqlContext, estimate: bool) -> Sql:
    """``count(*)`` of all matches. With only a driving clause the count comes from the value index
    alone (deleted resources have no index rows); ``estimate`` ignores the other clauses."""
    drive, conds = _where(query, ctx, query.resource_types)
    if drive is not None and (estimate or len(conds) == 1):
        return f"SELECT count(DISTINCT rid) FROM ({drive[0]}) d", drive[1]
    where = " AND ".join(c[0] for c in conds)
    args = [a for c in conds for a in c[1]]
    if drive is not None:
        return (f"SELECT count(*) FROM (SELECT DISTINCT rid FROM ({drive[0]}) d) m {ctx.dialect.ordered_join} "
                f"resources r ON r.rid = m.rid WHERE {where}", [*drive[1], *args])
    return f"SELECT count(*) FROM resources r WHERE {where}", args
