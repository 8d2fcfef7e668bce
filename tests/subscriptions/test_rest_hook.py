"""Create → handshake → active → a write triggers the topic → the notification reaches a local receiver."""

from __future__ import annotations

import pytest

from tests.subscriptions.conftest import World, appointment, params, subscription


@pytest.mark.req("TM-09")
async def test_appointment_booked_is_notified_end_to_end(world: World) -> None:
    dr1 = world.auth("practitioner", "Practitioner/dr1")
    sid = await world.subscribe(dr1, subscription(world.endpoint))
    [handshake] = await world.notifications(1, "handshake")
    assert handshake["type"] == "history"
    assert params(handshake)["subscription"]["reference"].endswith(f"/Subscription/{sid}")
    r = await world.client.post("/Appointment", json=appointment("a1"), headers=world.auth("patient", "Patient/p1"))
    assert r.status_code == 201, r.text
    aid = r.json()["id"]
    [note] = await world.notifications(1)
    status = params(note)
    assert status["events-since-subscription-start"] == "1"
    [event] = status["notification-event"]
    assert event["event-number"] == ["1"]
    assert event["focus"][0]["reference"].endswith(f"/Appointment/{aid}")
    assert note["entry"][1]["resource"]["id"] == aid
    assert world.receiver.accepted[-1].headers["x-client"] == "test"
