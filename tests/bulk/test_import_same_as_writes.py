"""``$import`` stores exactly what the same resources written one by one through ``PUT`` store: the same
index rows (every ``sp_*`` table), the same compartment patients, the same stored content apart from the
server's ``meta.lastUpdated``, one history version each, and the same search answers (docs/bulk-import.md §2:
"the treatment of a ``PUT``/``POST`` by the same client"). The import runs in small units across several
files, so the batched write path (one unit for many resources, patients computed over the unit, the
pipeline across files) is what is compared.

Both servers use the embedded SQLite backend, whose tables the test reads, whatever the suite's backend.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from bench.bench_import import synthea_ndjson
from fhir_server.config import Settings
from fhir_server.storage.sqlite.search.ddl import TABLES
from tests.bulk.conftest import serve
from tests.bulk.test_import import imported, parameters

pytestmark = pytest.mark.open_mode

SEARCHES = ("Observation?code=http://loinc.org|8302-2&_sort=_id", "Encounter?_count=500&_sort=_id",
            "Patient?gender=female&_sort=_id", "Condition?clinical-status=active&_sort=_id")


def _settings(tmp_path: Path, name: str, **extra: Any) -> Settings:
    return Settings(database=tmp_path / f"{name}.sqlite", synchronous_full=False, security_enabled=False,
                    dev_key_path=tmp_path / "dev-jwks.json", **extra)


def _stored(database: Path) -> dict[str, Any]:
    """Everything a write stores about the resources, keyed by (type, id) instead of the row ids."""
    conn = sqlite3.connect(database)
    try:
        out: dict[str, Any] = {}
        for table in TABLES:
            rows = conn.execute(f"SELECT r.type, r.id, t.* FROM {table} t JOIN resources r ON r.rid = t.rid").fetchall()
            columns = [d[0] for d in conn.execute(f"SELECT * FROM {table} LIMIT 0").description]
            rid = columns.index("rid") + 2
            out[table] = sorted(row[:2] + row[2:rid] + row[rid + 1:] for row in rows)
        resources = {}
        for rtype, rid_, version, deleted, data, patients in conn.execute(
                "SELECT type, id, version, deleted, data, patients FROM resources"):
            content = orjson.loads(data)
            content["meta"].pop("lastUpdated")
            resources[(rtype, rid_)] = (version, deleted, content, patients)
        out["resources"] = resources
        out["history"] = sorted(conn.execute(
            "SELECT type, id, version, method, patients FROM history").fetchall())
        return out
    finally:
        conn.close()


async def _searches(client: httpx.AsyncClient) -> list[list[str]]:
    found = []
    for query in SEARCHES:
        r = await client.get(f"/{query}")
        assert r.status_code == 200, r.text
        found.append([e["fullUrl"] for e in r.json().get("entry", [])])
    return found


async def test_imported_resources_get_the_index_rows_of_plain_writes(tmp_path: Path):
    folder = tmp_path / "import-root" / "synthea"
    folder.mkdir(parents=True)
    synthea_ndjson(folder, limit=3)  # 3 Synthea patients' records, one file per type
    files = sorted(folder.glob("*.ndjson"))
    lines = [orjson.loads(line) for path in files for line in path.read_bytes().splitlines()]
    assert len(files) > 5 and len(lines) > 300

    imported_db = tmp_path / "imported.sqlite"
    settings = _settings(tmp_path, "imported", import_root=tmp_path / "import-root", import_chunk_size=37)
    async with serve(settings) as client:
        manifest = await imported(client, json=parameters((None, "synthea")))
        assert manifest["error"] == [] and sum(o["count"] for o in manifest["output"]) == len(lines)
        imported_search = await _searches(client)

    async with serve(_settings(tmp_path, "written")) as client:
        for resource in lines:  # the same order as the import: file by file, line by line
            r = await client.put(f"/{resource['resourceType']}/{resource['id']}", content=orjson.dumps(resource),
                                 headers={"Content-Type": "application/fhir+json"})
            assert r.status_code == 201, r.text
        written_search = await _searches(client)

    expected, actual = _stored(tmp_path / "written.sqlite"), _stored(imported_db)
    for table in (*TABLES, "history"):
        assert actual[table] == expected[table], table
    assert actual["resources"] == expected["resources"]
    assert sum(len(expected[t]) for t in TABLES) > 5 * len(lines)  # the comparison covers real index data
    assert imported_search == written_search and any(imported_search)

