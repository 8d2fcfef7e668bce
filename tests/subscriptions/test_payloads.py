"""Payload kinds (empty, id-only, full-resource), filters, heartbeats, and an owner switching off."""

from __future__ import annotations

import asyncio

from tests.subscriptions.conftest import World, appointment, params, subscription


async def test_each_payload_kind(world: World) -> None:
    dr1 = world.auth("practitioner", "Practitioner/dr1")
    sids = {content: await world.subscribe(dr1, subscription(world.endpoint, content=content))
            for content in ("empty", "id-only", "full-resource")}
    booked = await world.write(world.auth("patient", "Patient/p1"), appointment())
    notes = await world.notifications(3)
    by_sub = {params(n)["subscription"]["reference"].rsplit("/", 1)[1]: n for n in notes}
    empty, id_only, full = (by_sub[sids[c]] for c in ("empty", "id-only", "full-resource"))
    assert len(empty["entry"]) == 1 and "focus" not in params(empty)["notification-event"][0]
    assert params(empty)["notification-event"][0]["event-number"] == ["1"]
    [_, entry] = id_only["entry"]
    assert entry["fullUrl"].endswith(f"/Appointment/{booked['id']}") and "resource" not in entry
    assert entry["request"] == {"method": "POST", "url": "Appointment"} and entry["response"] == {"status": "201"}
    assert params(id_only)["notification-event"][0]["focus"][0]["reference"] == entry["fullUrl"]
    assert full["entry"][1]["resource"]["id"] == booked["id"]
    for note in notes:
        assert note["type"] == "history"
        assert note["entry"][0]["resource"]["resourceType"] == "Parameters"
        assert note["entry"][0]["request"]["url"].endswith("/$status")


async def test_filters_select_the_events(world: World) -> None:
    dr1 = world.auth("practitioner", "Practitioner/dr1")
    cancelled_only = await world.subscribe(dr1, subscription(
        world.endpoint, filters=("Appointment?patient=p1&status=cancelled",)))
    other_patient = await world.subscribe(dr1, subscription(world.endpoint,
                                                            filters=("Appointment?patient=Patient/p2",)))
    p1 = world.auth("patient", "Patient/p1")
    booked = await world.write(p1, appointment())
    await world.write(p1, {**booked, "status": "cancelled"})
    [note] = await world.notifications(1)
    assert params(note)["subscription"]["reference"].endswith(cancelled_only)
    assert note["entry"][1]["resource"]["status"] == "cancelled"
    await asyncio.sleep(0.3)
    assert len(world.of_kind("event-notification")) == 1
    assert world.subscriptions.registry.get(other_patient).events == 0  # type: ignore[union-attr]


async def test_heartbeats_while_nothing_happens(world: World) -> None:
    world.subscriptions.heartbeat_tick = 0.05
    dr1 = world.auth("practitioner", "Practitioner/dr1")
    sid = await world.subscribe(dr1, subscription(world.endpoint, heartbeat=1))
    [beat, *_] = await world.notifications(1, "heartbeat", timeout=5)
    assert params(beat)["subscription"]["reference"].endswith(sid)
    assert params(beat)["events-since-subscription-start"] == "0"
    assert len(beat["entry"]) == 1


async def test_switched_off_it_gets_nothing_more(world: World) -> None:
    dr1 = world.auth("practitioner", "Practitioner/dr1")
    sid = await world.subscribe(dr1, subscription(world.endpoint))
    current = (await world.client.get(f"/Subscription/{sid}", headers=dr1)).json()
    r = await world.client.put(f"/Subscription/{sid}", json={**current, "status": "off"}, headers=dr1)
    assert r.status_code == 200 and r.json()["status"] == "off"
    await world.write(world.auth("patient", "Patient/p1"), appointment())
    await asyncio.sleep(0.3)
    assert world.of_kind("event-notification") == []
    r = await world.client.put(f"/Subscription/{sid}", json={**current, "status": "active"}, headers=dr1)
    assert r.json()["status"] == "requested"  # a client asks; the server activates after a new handshake
    await world.until(lambda: world.status_of(sid, dr1), "active")
    assert len(world.of_kind("handshake")) == 2
