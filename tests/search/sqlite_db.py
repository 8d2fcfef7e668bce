"""A minimal SQLite database with the store's two base tables plus the search index tables, for
testing the search layer without the HTTP stack (the seam in issue 3: resources/history + INDEX_DDL)."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from typing import Any

import orjson

from fhir_server.interactions.request import FhirRequest
from fhir_server.search import Indexer, SearchQuery, SearchResult, get_indexer, parse_search
from fhir_server.storage.protocols import StoredResource
from fhir_server.storage.sqlite.search import INDEX_DDL, delete_index, include_round, run_search, write_index

BASE_TABLES = [
    """CREATE TABLE resources (rid INTEGER PRIMARY KEY, type TEXT NOT NULL, id TEXT NOT NULL,
        version INTEGER NOT NULL, last_updated TEXT NOT NULL, deleted INTEGER NOT NULL, data BLOB,
        patients TEXT, UNIQUE(type, id))""",
    """CREATE TABLE history (rid INTEGER NOT NULL, version INTEGER NOT NULL, type TEXT NOT NULL,
        id TEXT NOT NULL, last_updated TEXT NOT NULL, deleted INTEGER NOT NULL, method TEXT NOT NULL,
        data BLOB, seq INTEGER NOT NULL, patients TEXT, PRIMARY KEY (rid, version))""",
    "CREATE INDEX resources_type_updated ON resources (type, last_updated)",
]


class IndexedDb:
    """Resources written the way the store writes them: row, then index rows, in one transaction."""

    def __init__(self, path: str = ":memory:", indexer: Indexer | None = None) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for stmt in BASE_TABLES + INDEX_DDL:
            self.conn.execute(stmt)
        self.seq = 0
        self.indexer = indexer or get_indexer()

    def put(self, resource: dict[str, Any], last_updated: str | None = None) -> int:
        self.seq += 1
        stamp = last_updated or f"2024-01-01T00:00:{self.seq % 60:02d}.{self.seq:06d}Z"
        resource = {**resource, "meta": {**resource.get("meta", {}), "lastUpdated": stamp}}
        data = orjson.dumps(resource)
        rtype, rid_text = resource["resourceType"], resource["id"]
        self.conn.execute("BEGIN")
        row = self.conn.execute("SELECT rid, version FROM resources WHERE type = ? AND id = ?",
                                (rtype, rid_text)).fetchone()
        if row is None:
            cur = self.conn.execute(
                "INSERT INTO resources (type, id, version, last_updated, deleted, data) VALUES (?,?,1,?,0,?)",
                (rtype, rid_text, stamp, data))
            rid, version = int(cur.lastrowid or 0), 1
        else:
            rid, version = row[0], row[1] + 1
            self.conn.execute("UPDATE resources SET version = ?, last_updated = ?, deleted = 0, data = ? WHERE rid = ?",
                              (version, stamp, data, rid))
        self.conn.execute("INSERT INTO history VALUES (?,?,?,?,?,0,'PUT',?,?,NULL)",
                          (rid, version, rtype, rid_text, stamp, data, self.seq))
        write_index(self.conn, rid, rtype, self.indexer.extract(resource))
        self.conn.execute("COMMIT")
        return rid

    def delete(self, resource_type: str, resource_id: str) -> None:
        self.seq += 1
        self.conn.execute("BEGIN")
        rid, version = self.conn.execute("SELECT rid, version FROM resources WHERE type = ? AND id = ?",
                                         (resource_type, resource_id)).fetchone()
        self.conn.execute("UPDATE resources SET version = ?, deleted = 1, data = NULL WHERE rid = ?",
                          (version + 1, rid))
        delete_index(self.conn, rid)
        self.conn.execute("COMMIT")

    def run(self, query: SearchQuery) -> SearchResult:
        """The page and, as for a caller authorised for everything, its includes round by round (the
        store never follows includes itself: security/paging.py does, judging each round)."""
        result = run_search(self.conn, query)
        seen = {(m.resource_type, m.resource_id) for m in result.matches}
        current, included = list(result.matches), []
        for round_no in range(5):
            specs = query.includes if round_no == 0 else tuple(s for s in query.includes if s.iterate)
            if not specs or not current:
                break
            found = include_round(self.conn, specs, current, query.max_included)
            current = [m for m in found if (m.resource_type, m.resource_id) not in seen]
            seen |= {(m.resource_type, m.resource_id) for m in current}
            included += current
        return replace(result, matches=(*result.matches, *included))

    def search(self, resource_type: str | None, query: str | list[tuple[str, str]], **kw: Any) -> SearchResult:
        params = parse_params(query) if isinstance(query, str) else query
        strict = kw.pop("strict", True)
        return self.run(parse_search(resource_type, params, strict=strict, indexer=self.indexer, **kw))

    def ids(self, resource_type: str | None, query: str | list[tuple[str, str]], **kw: Any) -> set[str]:
        result = self.search(resource_type, query, **{"strict": True, **kw})
        return {m.resource_id for m in result.matches if m.mode == "match"}


class DbStore:
    """The slice of the Store protocol search needs (``search``, ``include``, ``read``), over an
    ``IndexedDb``."""

    def __init__(self, db: IndexedDb) -> None:
        self.db = db

    async def read(self, resource_type: str, resource_id: str) -> StoredResource | None:
        row = self.db.conn.execute("SELECT version, last_updated, deleted, data, patients FROM resources "
                                   "WHERE type = ? AND id = ?", (resource_type, resource_id)).fetchone()
        if row is None:
            return None
        return StoredResource(resource_type, resource_id, row[0], row[1], bool(row[2]), row[3], "PUT", row[4])

    async def search(self, query: SearchQuery) -> SearchResult:
        return await asyncio.to_thread(self.db.run, query)

    async def include(self, specs: Any, sources: Any, limit: int) -> Any:
        return include_round(self.db.conn, specs, sources, limit)


def open_request(db: IndexedDb, base_url: str) -> FhirRequest:
    """The request an interaction runs in, over this database, in open mode (no policy: these tests are
    about search semantics; tests/security_http runs them under the policy)."""
    from fhir_server.config import Settings
    from fhir_server.definitions import get_definitions
    from fhir_server.interactions import request
    from fhir_server.interactions.base import Services
    from fhir_server.security.context import RequestContext
    from fhir_server.security.session import Enforcer
    from fhir_server.validation import get_structure_validator

    store = DbStore(db)
    services = Services(settings=Settings(security_enabled=False), store=store,  # type: ignore[arg-type]
                        definitions=get_definitions(), validator=get_structure_validator(), indexer=db.indexer)
    services.enforcer = Enforcer(store, None, None)  # type: ignore[arg-type]
    return request.open_request(services, RequestContext.system(), base_url=base_url)


def parse_params(query: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(query, keep_blank_values=True)
