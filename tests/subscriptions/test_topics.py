"""One test per Kazakhstan topic, from the triggering write to the delivered notification."""

from __future__ import annotations

import pytest

from fhir_server.subscriptions.topics import CONSENT, CRITICAL_READING
from tests.subscriptions.conftest import World, appointment, consent, params, reading, subscription


def _focus(note: dict) -> str:
    [event] = params(note)["notification-event"]
    return str(event["focus"][0]["reference"])


@pytest.mark.req("TM-09")
async def test_appointment_booked_moved_and_cancelled(world: World) -> None:
    dr1 = world.auth("practitioner", "Practitioner/dr1")
    p1 = world.auth("patient", "Patient/p1")
    await world.subscribe(dr1, subscription(world.endpoint))
    booked = await world.write(p1, appointment())
    await world.notifications(1)
    moved = {**booked, "start": "2026-12-11T09:00:00+05:00", "end": "2026-12-11T09:30:00+05:00"}
    await world.write(p1, moved)
    await world.notifications(2)
    unchanged = {**moved, "comment": "bring the referral"}
    await world.write(p1, unchanged)  # neither status nor time changed: no event
    await world.write(p1, {**unchanged, "status": "cancelled"})
    notes = await world.notifications(3)
    assert [params(n)["notification-event"][0]["event-number"] for n in notes] == [["1"], ["2"], ["3"]]
    assert [n["entry"][1]["resource"].get("status") for n in notes] == ["booked", "booked", "cancelled"]
    assert notes[1]["entry"][1]["resource"]["start"].startswith("2026-12-11")
    assert len(world.of_kind("event-notification")) == 3


@pytest.mark.req("TM-26")
async def test_critical_reading_is_notified_with_its_detected_issue(world: World) -> None:
    dr1 = world.auth("practitioner", "Practitioner/dr1")
    p1 = world.auth("patient", "Patient/p1")
    await world.subscribe(dr1, subscription(world.endpoint, topic=CRITICAL_READING,
                                            filters=("DetectedIssue?patient=Patient/p1",)))
    await world.write(p1, reading(80))  # within the limits of Goal/g1: no alert
    high = await world.write(p1, reading(150))
    [note] = await world.notifications(1)
    assert "/DetectedIssue/" in _focus(note)
    [event] = params(note)["notification-event"]
    assert event["additional-context"][0]["reference"].endswith(f"/Observation/{high['id']}")
    issue, observation = note["entry"][1]["resource"], note["entry"][2]["resource"]
    assert issue["resourceType"] == "DetectedIssue" and issue["severity"] == "high"
    assert issue["implicated"] == [{"reference": f"Observation/{high['id']}"}]
    assert observation["valueQuantity"]["value"] == 150


@pytest.mark.req("AC-18")
async def test_consent_given_and_revoked(world: World) -> None:
    dr1 = world.auth("practitioner", "Practitioner/dr1")
    p1 = world.auth("patient", "Patient/p1")
    await world.subscribe(dr1, subscription(world.endpoint, topic=CONSENT, filters=("Consent?patient=Patient/p1",)))
    given = consent("c-lab", "p1", "Practitioner/dr1")
    given.pop("id")
    stored = await world.write(p1, given)
    await world.notifications(1)
    await world.write(p1, {**stored, "status": "inactive"})
    notes = await world.notifications(2)
    statuses = [n["entry"][1]["resource"]["status"] for n in notes]
    assert statuses == ["active", "inactive"]
    assert all(_focus(n).endswith(f"/Consent/{stored['id']}") for n in notes)
