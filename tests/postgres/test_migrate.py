"""``kzfhir db init|upgrade`` (the schema's version) and ``kzfhir migrate`` (a SQLite store copied into
PostgreSQL: resources, history, search indexes and the audit chain, verified afterwards) — issue 11 §5."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from fhir_server.api.app import create_app
from fhir_server.cli import main
from fhir_server.config import Settings
from fhir_server.security.auth import issue_dev_token
from fhir_server.storage.postgres.schema import SCHEMA_VERSION
from tests.conftest import BASE
from tests.pg import PgCluster, release_database
from tests.security_http.conftest import FHIR_JSON, SEED, _seed, consent

pytestmark = pytest.mark.req("AC-14")
_NAMES = itertools.count(1)


@pytest.fixture
def empty_database() -> Iterator[str]:
    """A database without any kzfhir table (not cloned from the schema template)."""
    cluster = PgCluster.get()
    release_database(cluster.database("warm"))  # the templates exist before we bypass them
    name = f"empty_{os.getpid()}_{next(_NAMES)}"
    url = cluster.url(name)
    cluster._admin(f"CREATE DATABASE {name} TEMPLATE template0")
    yield url
    release_database(url)


def _version(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT version FROM kzfhir_schema").fetchone()
        return int(row[0]) if row else 0


def test_db_init_then_upgrade_records_the_schema_version(empty_database, capsys):
    assert main(["db", "init", "--database", empty_database]) == 0
    assert f"version {SCHEMA_VERSION}" in capsys.readouterr().out
    assert _version(empty_database) == SCHEMA_VERSION
    assert main(["db", "init", "--database", empty_database]) == 2  # not twice
    assert "already holds" in capsys.readouterr().err
    # a store of the first release: no version table, none of version 2's columns
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute("DROP TABLE kzfhir_schema")
        conn.execute("ALTER TABLE store_head DROP COLUMN changes")
        conn.execute("ALTER TABLE jobs DROP COLUMN lease_holder, DROP COLUMN lease_until")
    assert main(["db", "upgrade", "--database", empty_database]) == 0
    assert f"version {SCHEMA_VERSION} (was 1)" in capsys.readouterr().out
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("SELECT changes FROM store_head").fetchone() == (0,)
        conn.execute("UPDATE kzfhir_schema SET version = 99")
        conn.commit()
    assert main(["db", "upgrade", "--database", empty_database]) == 2  # a newer release's schema: refused
    assert "newer than this kzfhir" in capsys.readouterr().err


async def _use_sqlite_store(settings: Settings) -> dict[str, Any]:
    """Seed, then act as a secured server would: writes, reads and searches, all audited."""
    await _seed(settings, [*SEED, consent("cons1", {"reference": "Practitioner/dr1"}, classes=("Observation",),
                                     actions=("access", "correct"))])
    doctor = {"Authorization": "Bearer " + issue_dev_token("practitioner", "Practitioner/dr1",
                                                             key_path=settings.dev_key_path)}
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        assert (await c.get("/Observation/o1", headers=doctor)).status_code == 200
        changed = {**SEED[4], "status": "amended"}
        assert (await c.put("/Observation/o1", json=changed, headers={**doctor, **FHIR_JSON})).status_code == 200
        found = (await c.get("/Observation", params={"subject": "Patient/p1"}, headers=doctor)).json()
        return {"search": sorted(e["resource"]["id"] for e in found["entry"] if e["search"]["mode"] == "match")}


def test_migrate_copies_a_sqlite_store_whose_audit_chain_verifies_on_postgresql(empty_database, tmp_path: Path,
                                                                                capsys):
    source = tmp_path / "source.sqlite"
    keys = tmp_path / "jwks.json"
    sqlite_settings = Settings(database=source, dev_key_path=keys, synchronous_full=False)
    before = asyncio.run(_use_sqlite_store(sqlite_settings))
    assert main(["db", "init", "--database", empty_database]) == 0
    assert main(["migrate", "--from", str(source), "--to", empty_database]) == 0
    out = capsys.readouterr()
    assert "chain verified on PostgreSQL" in out.out and "resources" in out.err  # the progress bar
    with psycopg.connect(empty_database) as conn:  # analysed at once: the first searches plan on real figures
        analysed = conn.execute("SELECT count(*) FROM pg_stat_user_tables WHERE relname IN ('resources', "
                                "'sp_reference') AND last_analyze IS NOT NULL").fetchone()
    assert analysed == (2,)
    assert main(["migrate", "--from", str(source), "--to", empty_database]) == 2  # not into a used database
    assert "not empty" in capsys.readouterr().err

    async def on_postgres() -> None:
        doctor = {"Authorization": "Bearer " + issue_dev_token("practitioner", "Practitioner/dr1", key_path=keys)}
        auditor = {"Authorization": "Bearer " + issue_dev_token("auditor", "Practitioner/dr9", key_path=keys)}
        app = create_app(sqlite_settings.model_copy(update={"database": empty_database}))
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
            read = await c.get("/Observation/o1", headers=doctor)
            assert read.status_code == 200 and read.json()["status"] == "amended"
            assert read.json()["meta"]["versionId"] == "2"
            history = (await c.get("/Observation/o1/_history", headers=doctor)).json()
            assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]
            found = (await c.get("/Observation", params={"subject": "Patient/p1"}, headers=doctor)).json()
            assert sorted(e["resource"]["id"] for e in found["entry"] if e["search"]["mode"] == "match") \
                == before["search"]  # the copied index rows answer as on SQLite
            events = (await c.get("/AuditEvent", params={"patient": "Patient/p1"}, headers=auditor)).json()
            assert len(events["entry"]) >= 3  # the source's reads, write and search, and these
            # writing goes on where the source stopped: next version, next seq, a chain that still verifies
            changed = {**SEED[4], "status": "corrected"}
            put = await c.put("/Observation/o1", json=changed, headers={**doctor, **FHIR_JSON})
            assert put.status_code == 200 and put.json()["meta"]["versionId"] == "3"
            assert put.json()["meta"]["lastUpdated"] > history["entry"][0]["resource"]["meta"]["lastUpdated"]
            report = await app.state.services.store.audit.verify()
            assert report.ok and report.rows_checked > 0

    asyncio.run(on_postgres())
