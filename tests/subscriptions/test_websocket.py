"""The websocket channel against a live server with a real websocket client (the ``websockets`` library):
``$get-ws-binding-token``, ``bind-with-token``, handshake, heartbeat, event notifications, several
subscriptions on one socket, single-use expiring tokens, and the owner's access at delivery time."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from fhir_server.subscriptions.topics import CRITICAL_READING
from fhir_server.subscriptions.websocket import PATH
from tests.subscriptions.conftest import LiveWorld, appointment, consent, params, reading, subscription

pytestmark = pytest.mark.req("TM-09")
EMPTY = {"resourceType": "Parameters"}


def ws_subscription(**kwargs: Any) -> dict[str, Any]:
    body = subscription("", channel="websocket", **kwargs)
    del body["channel"]["endpoint"]  # a websocket subscription has none: the client connects
    return body


async def token_for(world: LiveWorld, who: dict[str, str], *sids: str) -> dict[str, Any]:
    if len(sids) == 1:
        r = await world.client.post(f"/Subscription/{sids[0]}/$get-ws-binding-token", json=EMPTY, headers=who)
    else:
        body = {"resourceType": "Parameters", "parameter": [{"name": "id", "valueId": s} for s in sids]}
        r = await world.client.post("/Subscription/$get-ws-binding-token", json=body, headers=who)
    assert r.status_code == 200, r.text
    return {p["name"]: next(v for k, v in p.items() if k.startswith("value")) for p in r.json()["parameter"]
            if p["name"] != "subscription"} | {"subscription": [p["valueString"] for p in r.json()["parameter"]
                                                                 if p["name"] == "subscription"]}


async def next_bundle(socket: ClientConnection, kind: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
    """The next text frame that is a notification (of ``kind``), skipping others (heartbeats)."""
    async with asyncio.timeout(timeout):
        while True:
            data = orjson.loads(await socket.recv())
            if data.get("resourceType") != "Bundle":
                return dict(data)
            if kind is None or params(data)["type"] == kind:
                return dict(data)


async def test_bind_handshake_event_and_heartbeat(live: LiveWorld) -> None:
    dr1 = live.auth("practitioner", "Practitioner/dr1")
    sid = await live.subscribe(dr1, ws_subscription(heartbeat=1), active=False)
    assert await live.status_of(sid, dr1) == "active"  # no handshake to wait for: it comes at the bind
    token = await token_for(live, dr1, sid)
    assert token["websocket-url"] == "ws://" + live.url.removeprefix("http://") + PATH
    assert token["subscription"] == [sid] and token["expiration"].endswith("Z")
    async with connect(token["websocket-url"]) as socket:
        await socket.send(f"bind-with-token {token['token']}")
        handshake = await next_bundle(socket, "handshake")
        assert handshake["type"] == "history"
        assert params(handshake)["subscription"]["reference"].endswith(f"/Subscription/{sid}")
        booked = await live.write(live.auth("patient", "Patient/p1"), appointment())
        note = await next_bundle(socket, "event-notification")
        [event] = params(note)["notification-event"]
        assert event["event-number"] == ["1"]
        assert event["focus"][0]["reference"].endswith(f"/Appointment/{booked['id']}")
        assert note["entry"][1]["resource"]["id"] == booked["id"]  # full-resource
        heartbeat = await next_bundle(socket, "heartbeat", timeout=15)
        assert params(heartbeat)["events-since-subscription-start"] == "1"


@pytest.mark.req("TM-26")
async def test_several_subscriptions_on_one_socket(live: LiveWorld) -> None:
    dr1 = live.auth("practitioner", "Practitioner/dr1")
    appointments = await live.subscribe(dr1, ws_subscription(), active=False)
    alerts = await live.subscribe(dr1, ws_subscription(topic=CRITICAL_READING,
                                                       filters=("DetectedIssue?patient=Patient/p1",)), active=False)
    token = await token_for(live, dr1, appointments, alerts)
    assert token["subscription"] == [appointments, alerts]
    async with connect(token["websocket-url"]) as socket:
        await socket.send(f"bind-with-token {token['token']}")
        shaken = {params(await next_bundle(socket, "handshake"))["subscription"]["reference"].rsplit("/", 1)[-1]
                  for _ in range(2)}
        assert shaken == {appointments, alerts}
        device = live.auth("practitioner", "Practitioner/dr1")
        await live.write(device, reading(180))  # outside 50..120: a critical reading
        await live.write(live.auth("patient", "Patient/p1"), appointment())
        got: dict[str, dict[str, Any]] = {}
        for _ in range(2):
            note = await next_bundle(socket, "event-notification")
            got[params(note)["subscription"]["reference"].rsplit("/", 1)[-1]] = note
        assert set(got) == {appointments, alerts}
        [event] = params(got[alerts])["notification-event"]
        assert event["focus"][0]["reference"].split("/")[-2] == "DetectedIssue"
        assert event["additional-context"][0]["reference"].split("/")[-2] == "Observation"


async def test_tokens_are_single_use_expiring_and_the_owners_only(live: LiveWorld) -> None:
    dr1 = live.auth("practitioner", "Practitioner/dr1")
    sid = await live.subscribe(dr1, ws_subscription(), active=False)
    token = await token_for(live, dr1, sid)
    async with connect(token["websocket-url"]) as socket:
        await socket.send(f"bind-with-token {token['token']}")
        await next_bundle(socket, "handshake")
    async with connect(token["websocket-url"]) as socket:  # used once: refused the second time
        await socket.send(f"bind-with-token {token['token']}")
        outcome = await next_bundle(socket)
        assert outcome["resourceType"] == "OperationOutcome"
    live.subscriptions.tokens.seconds = 0  # issued already expired
    stale = await token_for(live, dr1, sid)
    async with connect(stale["websocket-url"]) as socket:
        await socket.send(f"bind-with-token {stale['token']}")
        assert (await next_bundle(socket))["resourceType"] == "OperationOutcome"
    live.subscriptions.tokens.seconds = 60
    async with connect(token["websocket-url"]) as socket:  # a bearer token is no binding token
        await socket.send(f"bind-with-token {dr1['Authorization'].removeprefix('Bearer ')}")
        assert (await next_bundle(socket))["resourceType"] == "OperationOutcome"
        await socket.send("bind 1")  # the unauthenticated R4 'bind [id]' is not accepted
        assert (await next_bundle(socket))["resourceType"] == "OperationOutcome"
    op = f"/Subscription/{sid}/$get-ws-binding-token"
    dr2 = live.auth("practitioner", "Practitioner/dr2")
    assert (await live.client.post(op, json=EMPTY, headers=dr2)).status_code == 404  # not theirs: as if unknown
    admin = live.auth("admin", "Practitioner/adm1")
    assert (await live.client.post(op, json=EMPTY, headers=admin)).status_code == 403  # it would see dr1's data
    assert (await live.client.get(op, headers=dr1)).status_code == 405
    hook = await live.subscribe(dr1, subscription(live.endpoint))
    r = await live.client.post(f"/Subscription/{hook}/$get-ws-binding-token", json=EMPTY, headers=dr1)
    assert r.status_code == 422 and r.json()["issue"][0]["expression"] == ["Subscription.channel.type"]
    r = await live.client.post("/Subscription/$get-ws-binding-token", json=EMPTY, headers=dr1)
    assert r.status_code == 400 and r.json()["issue"][0]["expression"] == ["id"]


@pytest.mark.req("AC-18")
async def test_access_at_delivery_time_and_without_consent(live: LiveWorld) -> None:
    dr1 = live.auth("practitioner", "Practitioner/dr1")
    dr2 = live.auth("practitioner", "Practitioner/dr2")  # no consent of p1
    sid = await live.subscribe(dr1, ws_subscription(), active=False)
    other = await live.subscribe(dr2, ws_subscription(), active=False)
    worker = live.subscriptions.worker
    assert worker is not None
    await worker.stop()  # the event waits in the outbox while the patient revokes
    p1 = live.auth("patient", "Patient/p1")
    await live.write(p1, appointment())
    await live.write(p1, consent("c1", "p1", "Practitioner/dr1", status="inactive"))
    mine, theirs = await token_for(live, dr1, sid), await token_for(live, dr2, other)
    async with connect(mine["websocket-url"]) as socket, connect(theirs["websocket-url"]) as second:
        await socket.send(f"bind-with-token {mine['token']}")
        await second.send(f"bind-with-token {theirs['token']}")
        await next_bundle(socket, "handshake")
        await next_bundle(second, "handshake")
        await live.subscriptions.start_worker(poll_seconds=0.02, base_backoff=0.05)
        note = await next_bundle(socket, "event-notification")
        [event] = params(note)["notification-event"]
        assert "focus" not in event and len(note["entry"]) == 1  # the event number, nothing of the patient
        with pytest.raises(TimeoutError):  # dr2 never could read p1: not an event of theirs at all
            await next_bundle(second, "event-notification", timeout=1.0)


async def test_an_event_waits_for_the_socket(live: LiveWorld) -> None:
    dr1 = live.auth("practitioner", "Practitioner/dr1")
    sid = await live.subscribe(dr1, ws_subscription(), active=False)
    booked = await live.write(live.auth("patient", "Patient/p1"), appointment())
    await asyncio.sleep(0.3)  # delivered to nobody: retried with back-off
    token = await token_for(live, dr1, sid)
    async with connect(token["websocket-url"]) as socket:
        await socket.send(f"bind-with-token {token['token']}")
        note = await next_bundle(socket, "event-notification", timeout=20)
        assert note["entry"][1]["resource"]["id"] == booked["id"]
    assert await live.status_of(sid, dr1) == "active"  # nobody listening is no delivery error
