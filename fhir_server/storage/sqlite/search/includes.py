"""``_include`` / ``_revinclude`` (with ``:iterate`` and ``*``) for one page of matches
(FHIR R4 search §3.1.1.5.4 "Including other resources in result").

At most ``query.max_included`` resources are added to a page (issue 12: one ``_revinclude`` returned
130,001 entries): every statement has a LIMIT, so no more rows than that are ever read, and the
caller is told when the cap cut the list short (the Bundle then carries a warning)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

import orjson

from fhir_server.search.query import IncludeSpec, SearchMatch, SearchQuery

MAX_ITERATIONS = 4  # :iterate rounds; each round only follows resources the previous round added

_SELECT = "SELECT r.rid, r.type, r.id, r.data FROM resources r WHERE r.deleted = 0 AND "


def _forward(conn: sqlite3.Connection, spec: IncludeSpec, sources: list[SearchMatch], limit: int) -> list[tuple]:
    rids = [m.rid for m in sources if spec.source_type in ("*", m.resource_type)]
    if not rids:
        return []
    conds = ["x.rid IN (SELECT value FROM json_each(?))", "x.grp = 0", "x.ref_id IS NOT NULL"]
    args: list[object] = [orjson.dumps(rids).decode()]
    if spec.code != "*":
        conds.append("x.param = ?")
        args.append(spec.code)
    if spec.target_type is not None:
        conds.append("x.ref_type = ?")
        args.append(spec.target_type)
    sql = _SELECT + f"(r.type, r.id) IN (SELECT x.ref_type, x.ref_id FROM sp_reference x WHERE {' AND '.join(conds)})"
    return conn.execute(sql + " LIMIT ?", [*args, limit]).fetchall()


def _reverse(conn: sqlite3.Connection, spec: IncludeSpec, targets: list[SearchMatch], limit: int) -> list[tuple]:
    by_type: dict[str, list[str]] = {}
    for m in targets:
        if spec.target_type in (None, m.resource_type):
            by_type.setdefault(m.resource_type, []).append(m.resource_id)
    rows: list[tuple] = []
    for target_type, ids in by_type.items():
        conds = ["x.ref_id IN (SELECT value FROM json_each(?))", "x.ref_type = ?", "x.grp = 0"]
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


def fetch_includes(conn: sqlite3.Connection, query: SearchQuery, page: list[SearchMatch]
                   ) -> tuple[list[SearchMatch], bool]:
    """Resources the page's matches reference (or that reference them), each once, mode ``include``;
    and whether ``query.max_included`` cut them short."""
    seen = {(m.resource_type, m.resource_id) for m in page}
    out: list[SearchMatch] = []
    current = page
    for round_no in range(MAX_ITERATIONS + 1):
        specs: Iterable[IncludeSpec] = query.includes if round_no == 0 else [s for s in query.includes if s.iterate]
        specs = list(specs)
        if not specs or not current:
            break
        found: list[SearchMatch] = []
        for spec in specs:
            room = query.max_included - len(out) - len(found)
            # one row past the room tells a full page from a cut one; seen rows may come back too
            limit = room + 1 + len(seen)
            rows = _reverse(conn, spec, current, limit) if spec.reverse else _forward(conn, spec, current, limit)
            for rid, rtype, rid_str, data in rows:
                if (rtype, rid_str) not in seen:
                    if len(out) + len(found) >= query.max_included:
                        return out + found, True
                    seen.add((rtype, rid_str))
                    found.append(SearchMatch(rid, rtype, rid_str, data, "include"))
        out.extend(found)
        current = found
    return out, False
