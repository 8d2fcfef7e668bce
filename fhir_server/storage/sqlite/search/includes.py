"""``_include`` / ``_revinclude`` (with ``:iterate`` and ``*``) for one page of matches
(FHIR R4 search §3.1.1.5.4 "Including other resources in result"), one round per call.

Every statement has a LIMIT (issue 12: one ``_revinclude`` returned 130,001 entries): no more rows
than the caller asks for are ever read (security/paging.py sets the budget and says when it was cut)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from fhir_server.search.query import IncludeSpec, SearchMatch
from fhir_server.storage.sqlite.search.dialect import SQLITE, Dialect

_SELECT = "SELECT r.rid, r.type, r.id, r.data, r.patients FROM resources r WHERE r.deleted = 0 AND "


def _forward(conn: Any, spec: IncludeSpec, sources: list[SearchMatch], limit: int, dialect: Dialect) -> list[tuple]:
    rids = [m.rid for m in sources if spec.source_type in ("*", m.resource_type)]
    if not rids:
        return []
    conds = [f"x.rid IN ({dialect.int_list})", "x.grp = 0", "x.ref_id IS NOT NULL"]
    args: list[object] = [orjson.dumps(rids).decode()]
    if spec.code != "*":
        conds.append("x.param = ?")
        args.append(spec.code)
    if spec.target_type is not None:
        conds.append("x.ref_type = ?")
        args.append(spec.target_type)
    sql = _SELECT + f"(r.type, r.id) IN (SELECT x.ref_type, x.ref_id FROM sp_reference x WHERE {' AND '.join(conds)})"
    return conn.execute(sql + " LIMIT ?", [*args, limit]).fetchall()


def _reverse(conn: Any, spec: IncludeSpec, targets: list[SearchMatch], limit: int, dialect: Dialect) -> list[tuple]:
    by_type: dict[str, list[str]] = {}
    for m in targets:
        if spec.target_type in (None, m.resource_type):
            by_type.setdefault(m.resource_type, []).append(m.resource_id)
    rows: list[tuple] = []
    for target_type, ids in by_type.items():
        conds = [f"x.ref_id IN ({dialect.text_list})", "x.ref_type = ?", "x.grp = 0"]
        args: list[object] = [orjson.dumps(ids).decode(), target_type]
        if spec.source_type != "*":
            conds.append("x.type = ?")
            args.append(spec.source_type)
        if spec.code != "*":
            conds.append("x.param = ?")
            args.append(spec.code)
        sql = _SELECT + f"r.rid IN (SELECT x.rid FROM sp_reference x WHERE {' AND '.join(conds)})"
        rows.extend(conn.execute(sql + " LIMIT ?", [*args, limit - len(rows)]).fetchall())
        if len(rows) >= limit:
            break
    return rows


def include_round(conn: Any, specs: Iterable[IncludeSpec], sources: list[SearchMatch],
                  limit: int, dialect: Dialect = SQLITE) -> list[SearchMatch]:
    """One round: at most ``limit`` resources the specs reach from ``sources`` (forward or reverse), each
    once and none of the sources, mode ``include``. Iteration is driven by the caller, which judges every
    round before following it (security/paging.py): an include must never be reached through a resource
    the caller may not see."""
    seen = {(m.resource_type, m.resource_id) for m in sources}
    out: list[SearchMatch] = []
    for spec in specs:
        if len(out) >= limit:
            break
        # seen rows may come back too: ask for enough to fill the room left with new ones
        rows = (_reverse if spec.reverse else _forward)(conn, spec, sources, limit - len(out) + len(seen), dialect)
        for rid, rtype, rid_str, data, patients in rows:
            if (rtype, rid_str) not in seen and len(out) < limit:
                seen.add((rtype, rid_str))
                out.append(SearchMatch(rid, rtype, rid_str, data, "include", patients))
    return out
