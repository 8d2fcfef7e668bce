"""SQL for one search clause, in two shapes the planner combines:

* ``driving`` — ``SELECT rid ...`` listing the live resources of the searched types that match, read
  from a value index (used for the most selective clause, issue 3: "index use, not scans");
* ``probe`` — a boolean expression on the outer row ``{alias}`` checking one resource (used for
  every other clause, through the ``(rid, param)`` clustering of the index tables).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_server.search.query import (
    AnyOfClause,
    ChainClause,
    Clause,
    CompositeValue,
    DateValue,
    HasClause,
    MissingValue,
    ParamClause,
    TokenValue,
    UriValue,
)
from fhir_server.storage.sqlite.search.dialect import SQLITE, Dialect
from fhir_server.storage.sqlite.search.values_sql import Lookup, Sql, range_sql, value_sql

TABLE = {
    "token": "sp_token", "string": "sp_string", "date": "sp_date", "number": "sp_number",
    "quantity": "sp_quantity", "reference": "sp_reference", "uri": "sp_uri",
}
_NEGATIVE = frozenset({"not", "not-in"})


@dataclass
class SqlContext:
    lookup: Lookup | None
    depth: int = 0  # nesting level, to keep table aliases unique in nested sub-queries
    dialect: Dialect = SQLITE

    def alias(self, base: str) -> str:
        self.depth += 1
        return f"{base}{self.depth}"


def in_types(column: str, types: tuple[str, ...], dialect: Dialect = SQLITE) -> Sql:
    if not types:
        return dialect.true, []
    if len(types) == 1:
        return f"{column} = ?", [types[0]]
    return f"{column} IN ({','.join('?' * len(types))})", list(types)


def strength(clause: Clause) -> int:
    """How selective a clause usually is, for choosing the driving clause (0: cannot drive)."""
    if isinstance(clause, AnyOfClause):
        return 0  # a restriction of the access policy: probed on the rows the other clauses find
    if isinstance(clause, HasClause | ChainClause):
        return 80
    if clause.modifier in _NEGATIVE or clause.modifier == "missing":
        return 0
    if clause.code == "_id":
        return 95
    value = clause.values[0] if clause.values else None
    if clause.type == "reference":
        return 90 if not isinstance(value, UriValue) else 30
    if clause.type == "token" or clause.type == "composite":
        if isinstance(value, TokenValue) and value.code is None:
            return 20
        return {None: 70, "text": 10, "in": 50}.get(clause.modifier, 40)
    if clause.type == "string":
        return 5 if clause.modifier == "contains" else 60
    if clause.type == "uri":
        return 65 if clause.modifier is None else 30
    if isinstance(value, DateValue):
        return 40 if all(isinstance(v, DateValue) and v.prefix == "eq" for v in clause.values) else 5
    return 5


def driving(clause: Clause, types: tuple[str, ...], ctx: SqlContext) -> Sql | None:
    """Rids of live resources of ``types`` matching ``clause``, or None when it cannot drive."""
    if isinstance(clause, AnyOfClause) or strength(clause) == 0:
        return None
    if isinstance(clause, HasClause):
        return _has_driving(clause, types, ctx)
    if isinstance(clause, ChainClause):
        return _chain_driving(clause, types, ctx)
    if clause.code in ("_id", "_lastUpdated"):
        r = ctx.alias("d")
        cond, args = _column_condition(clause, r, ctx.dialect)
        tsql, targs = in_types(f"{r}.type", types, ctx.dialect)
        return f"SELECT {r}.rid FROM resources {r} WHERE {tsql} AND {r}.deleted = 0 AND {cond}", [*targs, *args]
    if clause.type == "composite":
        return _composite(clause, types, ctx, None)
    t = ctx.alias("t")
    cond, args = _values(clause, t, ctx)
    tsql, targs = in_types(f"{t}.type", types, ctx.dialect)
    return f"SELECT {t}.rid FROM {TABLE[clause.type]} {t} WHERE {tsql} AND {t}.param = ? AND {cond}", [
        *targs, clause.code, *args]


def probe(clause: Clause, alias: str, ctx: SqlContext) -> Sql:
    """A boolean SQL expression: does the resource row ``alias`` match ``clause``?"""
    if isinstance(clause, AnyOfClause):
        return _any_of(clause, alias, ctx)
    if isinstance(clause, HasClause):
        return _has_probe(clause, alias, ctx)
    if isinstance(clause, ChainClause):
        return _chain_probe(clause, alias, ctx)
    if clause.code in ("_id", "_lastUpdated"):
        return _column_condition(clause, alias, ctx.dialect)
    if clause.modifier == "missing":
        return _missing(clause, alias)
    if clause.type == "composite":
        return _composite(clause, (), ctx, alias)
    t = ctx.alias("t")
    cond, args = _values(clause, t, ctx)
    exists = f"EXISTS (SELECT 1 FROM {TABLE[clause.type]} {t} WHERE {t}.rid = {alias}.rid AND {t}.param = ? AND {cond})"
    # :not / :not-in match resources with no matching value, including those with no value at all.
    return (f"NOT {exists}" if clause.modifier in _NEGATIVE else exists), [clause.code, *args]


def _any_of(clause: AnyOfClause, alias: str, ctx: SqlContext) -> Sql:
    """Rows of other types pass; rows of the restricted type need one branch whose clauses all match."""
    branches: list[str] = []
    args: list[Any] = [clause.resource_type]
    for branch in clause.branches:
        parts = [probe(inner, alias, ctx) for inner in branch]
        branches.append("(" + " AND ".join([p[0] for p in parts] or [ctx.dialect.true]) + ")")
        args.extend(a for p in parts for a in p[1])
    return f"({alias}.type <> ? OR " + "(" + " OR ".join(branches or [ctx.dialect.false]) + "))", args


def _values(clause: ParamClause, t: str, ctx: SqlContext) -> Sql:
    parts = [value_sql(clause.type, clause.modifier, v, t, clause.code, ctx.lookup, ctx.dialect) for v in clause.values]
    return "(" + " OR ".join(p[0] for p in parts) + ")", [a for p in parts for a in p[1]]


def _column_condition(clause: ParamClause, r: str, dialect: Dialect = SQLITE) -> Sql:
    if clause.code == "_id":
        ids = [v.code for v in clause.values if isinstance(v, TokenValue)]
        sql = f"{r}.id IN ({','.join('?' * len(ids))})"
        return (f"NOT {sql}" if clause.modifier == "not" else sql), ids
    from fhir_server.search.dates import format_instant

    parts = []
    args: list[Any] = []
    for v in clause.values:
        if isinstance(v, DateValue):
            # last_updated is an instant: the target range is [t, t + 1 µs), compared as sortable text.
            sql, a = range_sql(v.prefix, f"{r}.last_updated", f"{r}.last_updated", v.low, v.high, 0)
            sql = sql.replace(f"{r}.last_updated <= ?", f"{r}.last_updated < ?")
            sql = sql.replace(f"{r}.last_updated > ?", f"{r}.last_updated >= ?")
            parts.append(sql)
            args.extend(format_instant(int(x)) for x in a)
    return "(" + " OR ".join(parts or [dialect.false]) + ")", args


def _missing(clause: ParamClause, alias: str) -> Sql:
    missing = isinstance(clause.values[0], MissingValue) and clause.values[0].missing
    table = TABLE.get(clause.type)
    param = clause.code
    if table is None:  # composite: look for its first component's rows
        table, param = _component_table(clause, 0), f"{clause.code}$0"
    exists = f"EXISTS (SELECT 1 FROM {table} m WHERE m.rid = {alias}.rid AND m.param = ?)"
    return (f"NOT {exists}" if missing else exists), [param]


def _component_table(clause: ParamClause, n: int) -> str:
    return TABLE[clause.component_types[n]] if n < len(clause.component_types) else "sp_token"


def _composite_branch(clause: ParamClause, value: CompositeValue, ctx: SqlContext) -> tuple[str, str, list[Any]]:
    """``FROM ... WHERE ...`` joining one row per component within one group; returns (first alias, sql, args)."""
    names = [ctx.alias("c") for _ in value.parts]
    c0 = names[0]
    joins: list[str] = []
    join_args: list[Any] = []
    conds: list[str] = []
    cond_args: list[Any] = []
    for n, (part, c) in enumerate(zip(value.parts, names, strict=True)):
        cond, cargs = value_sql(clause.component_types[n], None, part, c, clause.code, ctx.lookup,
                               ctx.dialect)
        if n:
            joins.append(f"JOIN {_component_table(clause, n)} {c} ON {c}.rid = {c0}.rid AND {c}.param = ? "
                         f"AND {c}.grp = {c0}.grp")
            join_args.append(f"{clause.code}${n}")
        conds.append(cond)
        cond_args.extend(cargs)
    sql = f"FROM {_component_table(clause, 0)} {c0} {' '.join(joins)} WHERE {c0}.param = ? AND {' AND '.join(conds)}"
    return c0, sql, [*join_args, f"{clause.code}$0", *cond_args]


def _composite(clause: ParamClause, types: tuple[str, ...], ctx: SqlContext, alias: str | None) -> Sql:
    """Composite values: every component matched within one group (R4 §3.1.1.4.9). ``alias`` None:
    the driving form."""
    sqls: list[str] = []
    args: list[Any] = []
    for value in clause.values:
        if not isinstance(value, CompositeValue):
            continue
        c0, sql, bargs = _composite_branch(clause, value, ctx)
        if alias is None:
            tsql, targs = in_types(f"{c0}.type", types, ctx.dialect)
            sqls.append(f"SELECT {c0}.rid {sql} AND {tsql}")
            args.extend([*bargs, *targs])
        else:
            sqls.append(f"EXISTS (SELECT 1 {sql} AND {c0}.rid = {alias}.rid)")
            args.extend(bargs)
    if alias is None:
        return " UNION ALL ".join(sqls), args
    return "(" + " OR ".join(sqls) + ")", args


def inner_rids(clause: Clause, resource_type: str, ctx: SqlContext) -> Sql:
    """Rids of live resources of one type matching one clause (driving if possible, else a scan)."""
    found = driving(clause, (resource_type,), ctx)
    if found is not None:
        return found
    r = ctx.alias("s")
    cond, args = probe(clause, r, ctx)
    sql = f"SELECT {r}.rid FROM resources {r} WHERE {r}.type = ? AND {r}.deleted = 0 AND {cond}"
    return sql, [resource_type, *args]


def _chain_targets(clause: ChainClause, x: str, ctx: SqlContext) -> Sql:
    parts, args = [], []
    for target, inner in clause.targets:
        sql, iargs = inner_rids(inner, target, ctx)
        t = ctx.alias("g")
        parts.append(f"({x}.ref_type = ? AND {x}.ref_id IN (SELECT {t}.id FROM resources {t} "
                     f"WHERE {t}.type = ? AND {t}.rid IN ({sql})))")
        args.extend([target, target, *iargs])
    return "(" + " OR ".join(parts) + ")", args


def _chain_driving(clause: ChainClause, types: tuple[str, ...], ctx: SqlContext) -> Sql:
    x = ctx.alias("x")
    cond, args = _chain_targets(clause, x, ctx)
    tsql, targs = in_types(f"{x}.type", types, ctx.dialect)
    sql = f"SELECT {x}.rid FROM sp_reference {x} WHERE {tsql} AND {x}.param = ? AND {cond}"
    return sql, [*targs, clause.code, *args]


def _chain_probe(clause: ChainClause, alias: str, ctx: SqlContext) -> Sql:
    x = ctx.alias("x")
    cond, args = _chain_targets(clause, x, ctx)
    return f"EXISTS (SELECT 1 FROM sp_reference {x} WHERE {x}.rid = {alias}.rid AND {x}.param = ? AND {cond})", [
        clause.code, *args]


def _has_driving(clause: HasClause, types: tuple[str, ...], ctx: SqlContext) -> Sql:
    inner, iargs = inner_rids(clause.inner, clause.source_type, ctx)
    x, r = ctx.alias("x"), ctx.alias("h")
    tsql, targs = in_types(f"{x}.ref_type", types, ctx.dialect)
    rsql, rargs = in_types(f"{r}.type", types, ctx.dialect)
    return (f"SELECT {r}.rid FROM resources {r} WHERE {rsql} AND {r}.deleted = 0 AND {r}.id IN ("
            f"SELECT {x}.ref_id FROM sp_reference {x} WHERE {x}.type = ? AND {x}.param = ? AND {tsql} "
            f"AND {x}.rid IN ({inner}))", [*rargs, clause.source_type, clause.code, *targs, *iargs])


def _has_probe(clause: HasClause, alias: str, ctx: SqlContext) -> Sql:
    inner, iargs = inner_rids(clause.inner, clause.source_type, ctx)
    x = ctx.alias("x")
    return (f"EXISTS (SELECT 1 FROM sp_reference {x} WHERE {x}.ref_id = {alias}.id AND {x}.ref_type = {alias}.type "
            f"AND {x}.param = ? AND {x}.type = ? AND {x}.rid IN ({inner}))", [clause.code, clause.source_type, *iargs])

