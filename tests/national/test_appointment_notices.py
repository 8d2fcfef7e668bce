"""Participants are told when an appointment is booked, moved or cancelled (TM-09)."""

from __future__ import annotations

import pytest

# FHIR semantics, not access: the server runs in open mode (security: tests/security_http/).
pytestmark = pytest.mark.open_mode

FHIR_JSON = {"content-type": "application/fhir+json"}


def _appointment(status: str, start: str) -> dict:
    return {"resourceType": "Appointment", "id": "appt1", "status": status,
            "serviceType": [{"coding": [{"code": "A01", "display": "Телеконсультация терапевта"}]}],
            "start": start, "end": start.replace(":00:00", ":20:00"),
            "participant": [{"actor": {"reference": "Patient/p1"}, "status": "accepted"},
                            {"actor": {"reference": "Practitioner/dr1"}, "status": "accepted"}]}


async def _texts(client, partition: str) -> list[str]:
    items = await client.app.state.services.store.outbox_partition("notification", partition, 20)
    import orjson

    return [orjson.loads(i.payload)["payload"][1]["contentString"] for i in reversed(items)]


@pytest.mark.req("TM-09")
async def test_booking_moving_and_cancelling_notify_every_participant(client):
    for res in ({"resourceType": "Patient", "id": "p1"}, {"resourceType": "Practitioner", "id": "dr1"}):
        await client.put(f"/{res['resourceType']}/{res['id']}", json=res, headers=FHIR_JSON)
    steps = [("booked", "2026-01-20T10:00:00+05:00"), ("booked", "2026-01-20T10:00:00+05:00"),
             ("booked", "2026-01-21T11:00:00+05:00"), ("cancelled", "2026-01-21T11:00:00+05:00")]
    for status, start in steps:
        r = await client.put("/Appointment/appt1", json=_appointment(status, start), headers=FHIR_JSON)
        assert r.status_code in (200, 201), r.text
    patient = await _texts(client, "Patient/p1")
    assert [t.split(":")[0] for t in patient] == ["Вы записаны", "Запись перенесена", "Запись отменена"]
    assert "2026-01-21T11:00:00+05:00" in patient[1]
    assert len(await _texts(client, "Practitioner/dr1")) == 3  # the unchanged second write told nobody
    listed = (await client.get("/Patient/p1/$notifications")).json()
    assert len(listed["entry"]) == 3
    assert all(e["resource"]["about"] == [{"reference": "Appointment/appt1"}] for e in listed["entry"])
