"""Remote monitoring: a reading outside the limits of the patient's Goal raises a DetectedIssue, a
follow-up Task and an urgent notice to every participant (TM-25, TM-26)."""

from __future__ import annotations

import orjson
import pytest

# FHIR semantics, not access: the server runs in open mode (security: tests/security_http/).
pytestmark = pytest.mark.open_mode

FHIR_JSON = {"content-type": "application/fhir+json"}
LOINC = "http://loinc.org"


def _reading(oid: str, value: float) -> dict:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "8867-4"}], "text": "Heart rate"},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-01-20T08:00:00+05:00",
            "valueQuantity": {"value": value, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}}


async def _seed(client) -> None:
    for res in ({"resourceType": "Patient", "id": "p1"}, {"resourceType": "Practitioner", "id": "dr1"},
                {"resourceType": "Practitioner", "id": "nurse1"},
                {"resourceType": "CareTeam", "id": "team1", "status": "active", "subject": {"reference": "Patient/p1"},
                 "participant": [{"member": {"reference": "Practitioner/nurse1"}}]},
                {"resourceType": "Goal", "id": "g1", "lifecycleStatus": "active",
                 "description": {"text": "heart rate within limits"}, "subject": {"reference": "Patient/p1"},
                 "expressedBy": {"reference": "Practitioner/dr1"},
                 "target": [{"measure": {"coding": [{"system": LOINC, "code": "8867-4"}]},
                             "detailRange": {"low": {"value": 50}, "high": {"value": 120}}}]}):
        r = await client.put(f"/{res['resourceType']}/{res['id']}", json=res, headers=FHIR_JSON)
        assert r.status_code in (200, 201), r.text


async def _count(client, rtype: str) -> int:
    return (await client.get(f"/{rtype}/_history")).json()["total"]


@pytest.mark.req("TM-25")
@pytest.mark.req("TM-26")
async def test_critical_reading_alerts_every_participant(client):
    await _seed(client)
    assert (await client.put("/Observation/ok1", json=_reading("ok1", 80), headers=FHIR_JSON)).status_code == 201
    assert await _count(client, "DetectedIssue") == 0
    assert (await client.put("/Observation/hi1", json=_reading("hi1", 150), headers=FHIR_JSON)).status_code == 201
    issues = (await client.get("/DetectedIssue?patient=Patient/p1")).json()["entry"]
    assert len(issues) == 1
    assert issues[0]["resource"]["implicated"] == [{"reference": "Observation/hi1"}]
    tasks = (await client.get("/Task?patient=Patient/p1&priority=stat")).json()["entry"]
    assert tasks[0]["resource"]["owner"] == {"reference": "Practitioner/dr1"}
    assert "ambulance" in tasks[0]["resource"]["description"]
    store = client.app.state.services.store
    for who in ("Patient/p1", "Practitioner/dr1", "Practitioner/nurse1"):
        notices = await store.outbox_partition("notification-urgent", who, 5)
        assert len(notices) == 1, who
        assert orjson.loads(notices[0].payload)["priority"] == "stat"


@pytest.mark.req("TM-25")
async def test_limits_follow_the_goal(client):
    await _seed(client)
    await client.put("/Observation/lo1", json=_reading("lo1", 40), headers=FHIR_JSON)
    assert await _count(client, "DetectedIssue") == 1
    goal = (await client.get("/Goal/g1")).json()
    goal["lifecycleStatus"] = "cancelled"
    assert (await client.put("/Goal/g1", json=goal, headers=FHIR_JSON)).status_code == 200
    await client.put("/Observation/lo2", json=_reading("lo2", 30), headers=FHIR_JSON)
    assert await _count(client, "DetectedIssue") == 1  # no active goal, no limits
