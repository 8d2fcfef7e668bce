"""Caches that decide access are invalidated on every process of a PostgreSQL database (issue 11 §3: "a
revoked Consent stops the very next read on every node"): the change counter read with every read, the
LISTEN/NOTIFY listener for idle processes, and a listener that lost its connection dropping everything
(storage/postgres/changes.py). The end-to-end proof is two live ``kzfhir serve`` processes on one database."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from fhir_server.backends import postgres_store
from fhir_server.config import Settings
from fhir_server.security.auth import issue_dev_token
from fhir_server.storage.postgres.store import PostgresStore
from tests.contract.test_store_contract import observation, patient, put
from tests.live_server import free_port, start_server
from tests.pg import fresh_database, release_database
from tests.security_http.conftest import FHIR_JSON, SEED, _seed, consent

pytestmark = pytest.mark.req("AC-03")


@pytest.fixture
def database() -> Iterator[str]:
    url = fresh_database("inval")
    yield url
    release_database(url)


@pytest.fixture
async def two_stores(database: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    a, b = postgres_store(database, pool_size=2), postgres_store(database, pool_size=2)
    assert isinstance(a, PostgresStore) and isinstance(b, PostgresStore)
    await a.open()
    await b.open()
    try:
        yield a, b
    finally:
        await b.close()
        await a.close()


async def _until(condition: Any, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def test_a_watched_write_on_one_store_reaches_an_idle_store_by_notification(two_stores):
    a, b = two_stores
    await _until(lambda: b.changes.listening)
    calls: list[str] = []
    b.watch_changes({"Patient"}, lambda: calls.append("patient"))
    b.watch_changes({"Consent"}, lambda: calls.append("consent"))
    a.watch_changes({"Patient", "Consent"}, lambda: None)  # the writer raises the counter for watched types
    await put(a, patient("p1", "Ахметов", "850315300019"))
    await _until(lambda: calls == ["patient"])  # only the watcher of the type written; b read nothing
    await put(a, observation("o1", "p1", "8867-4"))  # not watched: no counter, no notification
    await asyncio.sleep(0.3)
    assert calls == ["patient"]


async def test_a_read_finds_a_change_before_its_notification_arrives(two_stores):
    a, b = two_stores
    calls: list[int] = []
    b.watch_changes({"Consent"}, lambda: calls.append(1))
    a.watch_changes({"Consent"}, lambda: None)
    await b.close()  # no listener: only the counter read with the row can tell b
    b2 = postgres_store(a.url, pool_size=2)
    assert isinstance(b2, PostgresStore)
    b2.watch_changes({"Consent"}, lambda: calls.append(2))
    await b2.open()
    try:
        b2._listener.cancel()  # type: ignore[union-attr]  # as if the notification were late
        await asyncio.sleep(0.05)
        calls.clear()
        await put(a, patient("p1", "Ахметов", "850315300019"))
        await a.transaction(lambda view: view.put("Consent", "c1", 1, b"{}", None, "POST", "p1"))
        assert calls == []
        assert await b2.read("Patient", "p1") is not None
        assert calls == [2]  # before the read returned: the caller's decision uses fresh facts
        assert await b2.read("Patient", "absent") is None  # a missing row still carries the counter
        assert calls == [2]
    finally:
        await b2.close()
        await b.open()  # the fixture closes it


async def test_a_listener_that_lost_its_connection_drops_every_cache(two_stores, database):
    _, b = two_stores
    await _until(lambda: b.changes.listening)
    calls: list[int] = []
    b.watch_changes({"Consent"}, lambda: calls.append(1))
    with psycopg.connect(database, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE query LIKE 'LISTEN%%' OR query LIKE 'SELECT changes FROM store_head%%'")
    await _until(lambda: calls != [] and b.changes.listening)


# -- two live servers on one database ------------------------------------------------------------------
@pytest.fixture
def two_servers(database: str, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    keys = tmp_path / "jwks.json"
    settings = Settings(database=database, dev_key_path=keys, security_enabled=False)
    asyncio.run(_seed(settings, [*SEED, consent("cons1", {"reference": "Practitioner/dr1"}, classes=("Observation",))]))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        ports = []
        for _ in range(2):
            port = free_port()
            procs.append(start_server(database, port, open_mode=False, dev_keys=keys))  # type: ignore[arg-type]
            ports.append(port)
        yield f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}", keys
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)


@pytest.mark.req("AC-01")
def test_a_consent_revoked_on_one_node_refuses_the_very_next_read_on_the_other(two_servers):
    node_a, node_b, keys = two_servers
    doctor = {"Authorization": "Bearer " + issue_dev_token("practitioner", "Practitioner/dr1", key_path=keys)}
    patient_token = {"Authorization": "Bearer " + issue_dev_token("patient", "Patient/p1", key_path=keys)}
    with httpx.Client(timeout=30) as http:
        for _ in range(3):  # both nodes have cached the decision (the compiled read path)
            for node in (node_a, node_b):
                assert http.get(f"{node}/Observation/o1", headers=doctor).status_code == 200
            assert http.get(f"{node_b}/Observation", params={"subject": "Patient/p1"},
                            headers=doctor).json().get("total", 1) >= 1
        revoked = consent("cons1", {"reference": "Practitioner/dr1"}, classes=("Observation",), status="inactive")
        answer = http.put(f"{node_a}/Consent/cons1", json=revoked, headers={**patient_token, **FHIR_JSON})
        assert answer.status_code == 200, answer.text
        # at once, without waiting for anything: hidden means absent (docs/security.md)
        assert http.get(f"{node_b}/Observation/o1", headers=doctor).status_code == 404
        found = http.get(f"{node_b}/Observation", params={"subject": "Patient/p1"}, headers=doctor).json()
        assert not found.get("entry")
        assert http.get(f"{node_a}/Observation/o1", headers=doctor).status_code == 404
        # and back: a new Consent on node B opens node A's next read
        answer = http.put(f"{node_b}/Consent/cons1", json=consent("cons1", {"reference": "Practitioner/dr1"},
                                                                  classes=("Observation",)),
                          headers={**patient_token, **FHIR_JSON})
        assert answer.status_code == 200, answer.text
        assert http.get(f"{node_a}/Observation/o1", headers=doctor).status_code == 200
