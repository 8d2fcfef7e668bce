"""A subscription owner's SMART granular scopes restrict its notifications (issue 16): each event's focus
is judged as the owner's read, scopes included (docs/subscriptions.md "Access")."""

from __future__ import annotations

import asyncio

import pytest

from tests.subscriptions.conftest import World, appointment, params, subscription


@pytest.mark.req("AC-12")
@pytest.mark.req("TM-04")
async def test_only_resources_matching_the_owners_granular_scope_are_notified(world: World) -> None:
    dr1 = world.auth("practitioner", "Practitioner/dr1",
                     scopes=["user/Subscription.cruds", "user/Appointment.rs?status=cancelled"])
    sid = await world.subscribe(dr1, subscription(world.endpoint, content="id-only"))
    p1 = world.auth("patient", "Patient/p1")
    await world.write(p1, appointment(status="booked"))
    cancelled = await world.write(p1, appointment(status="cancelled"))
    [note] = await world.notifications(1)
    assert params(note)["subscription"]["reference"].endswith(sid)
    [event] = params(note)["notification-event"]
    assert f"Appointment/{cancelled['id']}" in str(event["focus"])
    await asyncio.sleep(0.3)  # give a wrong delivery time to arrive
    assert len(world.of_kind("event-notification")) == 1
