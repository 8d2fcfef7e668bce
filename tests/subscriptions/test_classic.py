"""Classic R4 subscriptions (``criteria`` = a search, R4 subscription.html): matched by the search engine
itself, rest-hook with and without payload, websocket ``bound``/``ping``, the owner's access at the
event and at delivery time."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect

from tests.subscriptions.conftest import LiveWorld, World, consent, reading
from tests.subscriptions.test_websocket import EMPTY

pytestmark = pytest.mark.req("TM-26")
CRITERIA = "Observation?code=http://loinc.org|8867-4&patient=Patient/p1&value-quantity=gt150"


@dataclass
class Hit:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP receiver that keeps the request line (a classic payload is a PUT to [endpoint]/[type]/[id])."""

    hits: list[Hit] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/mis/hook"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        method, path, _ = (await reader.readline()).decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.hits.append(Hit(method, path, headers, body))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    async def wait(self, count: int, timeout: float = 10.0) -> list[Hit]:
        deadline = time.monotonic() + timeout
        while len(self.hits) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.hits)} notifications arrived, expected {count}")
            await asyncio.sleep(0.02)
        return self.hits


def classic(endpoint: str, criteria: str = CRITERIA, payload: bool = True, channel: str = "rest-hook"
            ) -> dict[str, Any]:
    chan: dict[str, Any] = {"type": channel, "header": ["Authorization: Bearer mis-secret"]}
    if channel == "rest-hook":
        chan["endpoint"] = endpoint
    if payload:
        chan["payload"] = "application/fhir+json"
    return {"resourceType": "Subscription", "status": "requested", "reason": "high heart rate",
            "criteria": criteria, "channel": chan}


@pytest.fixture
async def receiver() -> Any:
    r = Receiver()
    yield r
    await r.stop()


async def test_payload_is_a_put_of_the_matching_resource(world: World, receiver: Receiver) -> None:
    dr1 = world.auth("practitioner", "Practitioner/dr1")
    r = await world.client.post("/Subscription", json=classic(await receiver.start()), headers=dr1)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "active"  # R4: active once accepted, no handshake
    await world.write(dr1, reading(100))  # does not match value-quantity=gt150
    high = await world.write(dr1, reading(160))
    [hit] = await receiver.wait(1)
    assert (hit.method, hit.path) == ("PUT", f"/mis/hook/Observation/{high['id']}")
    assert orjson.loads(hit.body)["id"] == high["id"]
    assert hit.headers["authorization"] == "Bearer mis-secret"
    await asyncio.sleep(0.3)
    assert len(receiver.hits) == 1  # the reading of 100 was no match: the search engine said so


async def test_without_payload_an_empty_post(world: World, receiver: Receiver) -> None:
    dr1 = world.auth("practitioner", "Practitioner/dr1")
    r = await world.client.post("/Subscription", json=classic(await receiver.start(), payload=False), headers=dr1)
    assert r.status_code == 201, r.text
    await world.write(dr1, reading(170))
    [hit] = await receiver.wait(1)
    assert (hit.method, hit.path, hit.body) == ("POST", "/mis/hook", b"")


@pytest.mark.req("AC-18")
async def test_access_rules_apply_as_for_topics(world: World, receiver: Receiver) -> None:
    endpoint = await receiver.start()
    dr1 = world.auth("practitioner", "Practitioner/dr1")
    dr2 = world.auth("practitioner", "Practitioner/dr2")  # no consent of p1: matches are no events of theirs
    assert (await world.client.post("/Subscription", json=classic(endpoint + "/dr2"), headers=dr2)).status_code == 201
    assert (await world.client.post("/Subscription", json=classic(endpoint), headers=dr1)).status_code == 201
    worker = world.subscriptions.worker
    assert worker is not None
    await worker.stop()  # the event waits in the outbox while the patient revokes
    await world.write(dr1, reading(190))
    await world.write(world.auth("patient", "Patient/p1"), consent("c1", "p1", "Practitioner/dr1", status="inactive"))
    await world.subscriptions.start_worker(poll_seconds=0.02, base_backoff=0.05)
    [hit] = await receiver.wait(1)
    assert (hit.method, hit.path, hit.body) == ("POST", "/mis/hook", b"")  # no longer readable: the empty form
    await asyncio.sleep(0.3)
    assert all(not h.path.startswith("/mis/hook/dr2") for h in receiver.hits)


async def test_criteria_are_checked_by_the_search_parser(world: World) -> None:
    dr1 = world.auth("practitioner", "Practitioner/dr1")
    for criteria in ("Observation?value-quantity=abc", "Observation?patient:nonsense=1", "Observation?_count=5",
                     "Subscription?status=active"):
        r = await world.client.post("/Subscription", json=classic("http://127.0.0.1:9/x", criteria), headers=dr1)
        assert r.status_code == 422, (criteria, r.text)
        assert r.json()["issue"][0]["expression"] == ["Subscription.criteria"]


async def test_websocket_bound_and_ping(live: LiveWorld) -> None:
    dr1 = live.auth("practitioner", "Practitioner/dr1")
    r = await live.client.post("/Subscription", json=classic("", payload=False, channel="websocket"), headers=dr1)
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    token = await live.client.post(f"/Subscription/{sid}/$get-ws-binding-token", json=EMPTY, headers=dr1)
    values = {p["name"]: next(v for k, v in p.items() if k.startswith("value")) for p in token.json()["parameter"]}
    async with connect(values["websocket-url"]) as socket:
        await socket.send(f"bind-with-token {values['token']}")
        assert await asyncio.wait_for(socket.recv(), 10) == f"bound {sid}"
        await live.write(dr1, reading(175))
        assert await asyncio.wait_for(socket.recv(), 10) == f"ping {sid}"
