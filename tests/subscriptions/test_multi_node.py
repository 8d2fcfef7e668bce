"""Subscriptions on several server processes of one PostgreSQL database (issue 15 §5): event numbers come
from the database (two nodes never hand out the same number or outbox key), and a Subscription created,
switched off or deleted on one node takes effect on the other without a restart (the store's change
feed). Two apps in this process, each with its own store, registry, delivery worker and change listener
on one database — and, for the numbering, two live ``kzfhir serve`` processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.security.auth import issue_dev_token
from fhir_server.subscriptions.registry import Entry, Registry
from fhir_server.subscriptions.service import Subscriptions, installed
from tests.conftest import BASE
from tests.live_server import free_port, start_server
from tests.patient_ops.receivers import WebhookReceiver
from tests.pg import fresh_database, release_database
from tests.subscriptions.conftest import FHIR_JSON, _seed, appointment, bundle_of, params, status_type, subscription

pytestmark = pytest.mark.req("TM-09")


@dataclass
class Node:
    client: httpx.AsyncClient
    app: Any

    @property
    def subscriptions(self) -> Subscriptions:
        found = installed(self.app.state.services)
        assert found is not None
        return found


@pytest.fixture
def database() -> Iterator[str]:
    url = fresh_database("subs", published=True)
    yield url
    release_database(url)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[WebhookReceiver, str]]:
    r = WebhookReceiver()
    endpoint = await r.start()
    yield r, endpoint
    await r.stop()


@pytest.fixture
async def nodes(database: str, tmp_path: Path) -> AsyncIterator[tuple[Node, Node, Settings]]:
    settings = Settings(database=database, dev_key_path=tmp_path / "jwks.json")
    await _seed(settings)
    apps = [create_app(settings), create_app(settings)]
    async with apps[0].router.lifespan_context(apps[0]), apps[1].router.lifespan_context(apps[1]), \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=apps[0]), base_url=BASE, timeout=30) as a, \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=apps[1]), base_url=BASE, timeout=30) as b:
        node_a, node_b = Node(a, apps[0]), Node(b, apps[1])
        for node in (node_a, node_b):
            await node.subscriptions.start_worker(poll_seconds=0.02, base_backoff=0.05, max_attempts=3)
        yield node_a, node_b, settings


def doctor(settings: Settings) -> dict[str, str]:
    token = issue_dev_token("practitioner", "Practitioner/dr1", key_path=settings.dev_key_path)
    return {"Authorization": f"Bearer {token}", **FHIR_JSON}


async def until(probe: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def events(receiver: WebhookReceiver) -> list[dict[str, Any]]:
    return [b for b in (bundle_of(r) for r in receiver.accepted) if status_type(b) == "event-notification"]


def numbers(receiver: WebhookReceiver) -> list[int]:
    return sorted(int(params(b)["notification-event"][0]["event-number"][0]) for b in events(receiver))


async def _subscribe(node: Node, who: dict[str, str], endpoint: str) -> str:
    r = await node.client.post("/Subscription", json=subscription(endpoint, content="id-only"), headers=who)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_two_nodes_number_the_events_of_one_subscription_from_the_database(nodes, receiver):
    a, b, settings = nodes
    receiver, endpoint = receiver
    who = doctor(settings)
    sid = await _subscribe(a, who, endpoint)
    await until(lambda: (e := b.subscriptions.registry.get(sid)) is not None and e.status == "active")

    async def book(node: Node, n: int) -> None:
        r = await node.client.post("/Appointment", json=appointment(start=f"2026-12-{10 + n:02d}T09:00:00+05:00"),
                                   headers=who)
        assert r.status_code == 201, r.text

    await asyncio.gather(*(book(a if n % 2 else b, n) for n in range(16)))
    await until(lambda: len(events(receiver)) >= 16)
    await asyncio.sleep(0.3)  # nothing more, nothing twice
    assert numbers(receiver) == list(range(1, 17))
    keys = [r.headers["idempotency-key"] for r in receiver.accepted]
    assert len(keys) == len(set(keys))
    for node in (a, b):  # each node reports the database's count, whichever node numbered them
        r = await node.client.get(f"/Subscription/{sid}/$status", headers=who)
        assert params(r.json())["events-since-subscription-start"] == "16", r.text


async def test_a_subscription_created_switched_off_and_deleted_on_one_node_takes_effect_on_the_other(
        nodes, receiver):
    a, b, settings = nodes
    receiver, endpoint = receiver
    who = doctor(settings)
    sid = await _subscribe(a, who, endpoint)
    # created on A: B serves it without a restart (the change feed), and B's writes are its events
    await until(lambda: (e := b.subscriptions.registry.get(sid)) is not None and e.status == "active")
    r = await b.client.post("/Appointment", json=appointment(), headers=who)
    assert r.status_code == 201, r.text
    await until(lambda: numbers(receiver) == [1])
    # switched off on A: B stops matching
    current = (await a.client.get(f"/Subscription/{sid}", headers=who)).json()
    r = await a.client.put(f"/Subscription/{sid}", json={**current, "status": "off"}, headers=who)
    assert r.status_code == 200, r.text
    await until(lambda: (e := b.subscriptions.registry.get(sid)) is not None and e.status == "off")
    assert b.subscriptions.registry.for_topic(current["criteria"]) == ()
    r = await b.client.post("/Appointment", json=appointment(start="2026-12-11T09:00:00+05:00"), headers=who)
    assert r.status_code == 201, r.text
    # on again (a new handshake), then deleted on B: A forgets it
    r = await a.client.put(f"/Subscription/{sid}", json={**current, "status": "requested"}, headers=who)
    assert r.status_code == 200, r.text
    await until(lambda: (e := b.subscriptions.registry.get(sid)) is not None and e.status == "active")
    r = await b.client.delete(f"/Subscription/{sid}", headers=who)
    assert r.status_code in (200, 204), r.text
    await until(lambda: a.subscriptions.registry.get(sid) is None)
    r = await a.client.post("/Appointment", json=appointment(start="2026-12-12T09:00:00+05:00"), headers=who)
    assert r.status_code == 201, r.text
    await asyncio.sleep(0.5)
    assert numbers(receiver) == [1]  # nothing while off, nothing after the delete


async def test_concurrent_units_on_two_stores_never_share_an_event_number(database):
    """The numbering itself, without HTTP: units on two stores of one database, side by side."""
    from fhir_server.backends import postgres_store
    from fhir_server.subscriptions.ownership import Owner
    from fhir_server.subscriptions.registry import JOB_KIND, JOB_STATUS, job_id
    from fhir_server.subscriptions.spec import read_spec

    spec = read_spec(subscription("http://127.0.0.1:9/hook"))
    entry = Entry("s1", spec, "active", Owner(), "http://x/fhir", 0, 1)
    stores = [postgres_store(database, pool_size=2), postgres_store(database, pool_size=2)]
    registries = [Registry(), Registry()]
    for store, registry in zip(stores, registries, strict=True):
        await store.open()
        registry.put(entry)
    try:
        await stores[0].transaction(lambda v: v.put_job(job_id("s1"), JOB_KIND, JOB_STATUS, entry.state()))

        async def take(i: int) -> int:
            number: int = await stores[i % 2].transaction(lambda v: registries[i % 2].next_event(v, entry))
            return number

        taken = await asyncio.gather(*(take(i) for i in range(40)))
        assert sorted(taken) == list(range(1, 41))
        job = await stores[1].get_job(job_id("s1"))
        assert job is not None and orjson.loads(job[3])["events"] == 40
    finally:
        for store in stores:
            await store.close()


@pytest.fixture
async def two_servers(database: str, tmp_path: Path) -> AsyncIterator[tuple[str, str, Settings]]:
    settings = Settings(database=database, dev_key_path=tmp_path / "jwks.json")
    await _seed(settings)
    procs = []
    try:
        ports = []
        for _ in range(2):
            port = free_port()
            procs.append(await asyncio.to_thread(start_server, database, port, open_mode=False,  # type: ignore[arg-type]
                                                 dev_keys=settings.dev_key_path))
            ports.append(port)
        yield f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}", settings
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            await asyncio.to_thread(proc.wait, 30)


async def test_two_server_processes_on_one_database_number_events_once(two_servers, receiver):
    node_a, node_b, settings = two_servers
    receiver, endpoint = receiver
    who = doctor(settings)
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(f"{node_a}/Subscription", json=subscription(endpoint, content="id-only"), headers=who)
        assert r.status_code == 201, r.text
        sid = r.json()["id"]
        for node in (node_a, node_b):
            deadline = time.monotonic() + 30
            while params((await http.get(f"{node}/Subscription/{sid}/$status", headers=who)).json())["status"] \
                    != "active":
                assert time.monotonic() < deadline, "the subscription did not become active"
                await asyncio.sleep(0.1)

        async def book(n: int) -> None:
            node = node_a if n % 2 else node_b
            r = await http.post(f"{node}/Appointment", headers=who,
                                json=appointment(start=f"2026-12-{10 + n:02d}T09:00:00+05:00"))
            assert r.status_code == 201, r.text

        await asyncio.gather(*(book(n) for n in range(12)))
        await until(lambda: len(events(receiver)) >= 12, timeout=60)
        await asyncio.sleep(1.0)  # a duplicate would come within a poll or two
        assert numbers(receiver) == list(range(1, 13))
        keys = [r.headers["idempotency-key"] for r in receiver.accepted]
        assert len(keys) == len(set(keys))
        for node in (node_a, node_b):
            r = await http.get(f"{node}/Subscription/{sid}/$status", headers=who)
            assert params(r.json())["events-since-subscription-start"] == "12", r.text
