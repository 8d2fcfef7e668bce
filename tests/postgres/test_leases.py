"""Background work on several processes of one PostgreSQL database is leased (issue 11 §3: "each item done
once, taken over when a node dies"): outbox messages are claimed ``FOR UPDATE SKIP LOCKED`` with a lease,
so two workers racing deliver each message once, and a message claimed by a worker that died is
delivered by another once the lease has run out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from fhir_server.backends import postgres_store
from fhir_server.jobs.worker import FMT, OutboxWorker
from fhir_server.storage.protocols import Store
from tests.live_server import free_port, start_server
from tests.pg import fresh_database, release_database

pytestmark = pytest.mark.req("TM-13")
TOPIC = "notification"


class Recording:
    """A channel that takes its time, so that two workers' rounds overlap."""

    name = "recording"

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def deliver(self, topic: str, key: str, payload: dict[str, Any]) -> None:
        await asyncio.sleep(0.005)
        self.log.append(key)


@pytest.fixture
def database() -> Iterator[str]:
    url = fresh_database("lease", published=True)
    yield url
    release_database(url)


@pytest.fixture
async def stores(database: str) -> AsyncIterator[tuple[Store, Store]]:
    a, b = postgres_store(database, pool_size=3), postgres_store(database, pool_size=3)
    await a.open()
    await b.open()
    try:
        yield a, b
    finally:
        await b.close()
        await a.close()


async def _enqueue(store: Store, count: int) -> list[str]:
    keys = [f"msg-{n}" for n in range(count)]

    def unit(view: Any) -> None:
        for key in keys:
            view.enqueue(TOPIC, "p1", key, orjson.dumps({"kind": "test", "key": key}))

    await store.transaction(unit)
    return keys


async def test_two_workers_racing_deliver_each_message_once(stores):
    a, b = stores
    keys = await _enqueue(a, 60)
    delivered: list[str] = []
    workers = [OutboxWorker(s, {TOPIC: [Recording(delivered)]}, batch=7, sync_audit=False) for s in (a, b)]
    for _ in range(30):
        done = await asyncio.gather(*(w.run_once() for w in workers))
        if sum(done) == 0 and len(delivered) >= len(keys):
            break
    assert sorted(delivered) == sorted(keys)  # every one, and none twice
    assert await a.outbox_due(TOPIC, datetime.now(UTC).strftime(FMT), 100) == []
    assert {i.status for i in await a.outbox_partition(TOPIC, "p1", 1000)} == {"delivered"}
    assert len(await a.audit.events(None, 1000)) == len(keys)  # one delivery audited per message (TM-13)


async def test_a_message_claimed_by_a_worker_that_died_is_delivered_by_another_after_the_lease(stores):
    a, b = stores
    keys = await _enqueue(a, 5)
    now = datetime.now(UTC)
    claimed = await a.outbox_due(TOPIC, now.strftime(FMT), 100)  # node A claims, then dies
    assert sorted(i.key for i in claimed) == keys
    delivered: list[str] = []
    soon = OutboxWorker(b, {TOPIC: [Recording(delivered)]}, sync_audit=False, clock=lambda: now + timedelta(seconds=5))
    assert await soon.run_once() == 0 and delivered == []  # leased: not B's yet
    later = OutboxWorker(b, {TOPIC: [Recording(delivered)]}, sync_audit=False,
                         clock=lambda: now + timedelta(seconds=61))
    assert await later.run_once() == 5 and sorted(delivered) == keys


async def test_a_late_settlement_does_not_undo_another_workers_delivery(stores):
    a, b = stores
    await _enqueue(a, 1)
    now = datetime.now(UTC)
    [item] = await a.outbox_due(TOPIC, now.strftime(FMT), 1)
    await b.transaction(lambda v: v.settle_outbox([item.id], "delivered", None, None))
    await a.transaction(lambda v: v.settle_outbox([item.id], "retry", "timed out", now.strftime(FMT)))
    [after] = await a.outbox_partition(TOPIC, "p1", 10)
    assert after.status == "delivered" and after.attempts == 1 and after.last_error is None


# -- $export jobs across two live servers -------------------------------------------------------------
@pytest.fixture
def two_nodes(database: str, tmp_path, monkeypatch) -> Iterator[tuple[str, str]]:
    # shared storage for the files (KZFHIR_EXPORT_DIR); a short lease so that the take-over is quick
    monkeypatch.setenv("KZFHIR_EXPORT_DIR", str(tmp_path / "exports"))
    monkeypatch.setenv("KZFHIR_EXPORT_LEASE_SECONDS", "3")
    procs = []
    try:
        urls = []
        for _ in range(2):
            port = free_port()
            procs.append(start_server(database, port, open_mode=True))  # type: ignore[arg-type]
            urls.append(f"http://127.0.0.1:{port}")
        yield urls[0], urls[1]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)


def _wait_manifest(http: httpx.Client, status_url: str) -> dict[str, Any]:
    for _ in range(300):
        answer = http.get(status_url)
        if answer.status_code == 200:
            manifest: dict[str, Any] = answer.json()
            return manifest
        assert answer.status_code == 202, answer.text
        time.sleep(0.1)
    raise AssertionError("the export did not complete")


def test_an_export_whose_node_died_is_resumed_by_another_node_and_never_failed_by_a_poll(two_nodes, database):
    node_a, node_b = two_nodes
    with httpx.Client(timeout=30) as http:
        for n in range(3):
            patient = {"resourceType": "Patient", "id": f"p{n}", "name": [{"family": f"Family{n}"}]}
            assert http.put(f"{node_a}/Patient/p{n}", json=patient).status_code == 201
        kick = http.get(f"{node_a}/$export", params={"_type": "Patient"},
                        headers={"Prefer": "respond-async", "Accept": "application/fhir+json"})
        assert kick.status_code == 202, kick.text
        job_id = kick.headers["content-location"].rsplit("/", 1)[1]
        _wait_manifest(http, f"{node_a}/$export-status/{job_id}")
        # as if node A had died in the middle of the export: in progress, no files, a lease still running
        with psycopg.connect(database, autocommit=True) as conn:
            doc = orjson.loads(conn.execute("SELECT data FROM jobs WHERE id = %s", [job_id]).fetchone()[0])
            doc.update(status="in-progress", output=[], error=[])
            conn.execute("UPDATE jobs SET status = 'in-progress', data = %s, lease_holder = 'node-a:1:dead', "
                         "lease_until = now() + interval '3 seconds' WHERE id = %s", [orjson.dumps(doc), job_id])
            status_b = f"{node_b}/$export-status/{job_id}"
            answer = http.get(status_b)  # another node's running job: in progress, not "interrupted"
            assert answer.status_code == 202 and answer.headers["x-progress"] == "in progress"
            assert conn.execute("SELECT status FROM jobs WHERE id = %s", [job_id]).fetchone()[0] == "in-progress"
            manifest = _wait_manifest(http, status_b)  # once the lease has run out, node B runs it
            holder = conn.execute("SELECT lease_holder FROM jobs WHERE id = %s", [job_id]).fetchone()[0]
        assert holder != "node-a:1:dead"
        [output] = manifest["output"]
        assert output["type"] == "Patient" and output["count"] == 3
        lines = http.get(output["url"].replace(node_a, node_b)).text.splitlines()
        assert sorted(orjson.loads(line)["id"] for line in lines) == ["p0", "p1", "p2"]
