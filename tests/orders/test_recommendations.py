"""Recommendations on treatment adherence and lifestyle (TM-16): the doctor sends them tied to the care plan, the
patient sees them and is told, and reminders come on a schedule through the outbox until revoked. Security on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from tests.orders.conftest import OpenWorld

KIND = "https://fhir.kzfhir.kz/CodeSystem/kz-recommendation-kind"
SCHEDULE = "https://fhir.kzfhir.kz/StructureDefinition/kz-reminder-schedule"
PLAN = {"resourceType": "CarePlan", "id": "cp1", "status": "active", "intent": "plan",
        "subject": {"reference": "Patient/p1"}, "title": "Гипертония: наблюдение"}


def _recommendation(kind: str, text: str, **more: Any) -> dict[str, Any]:
    return {"resourceType": "Communication", "status": "completed", "subject": {"reference": "Patient/p1"},
            "basedOn": [{"reference": "CarePlan/cp1"}], "sender": {"reference": "Practitioner/dr1"},
            "recipient": [{"reference": "Patient/p1"}], "topic": {"coding": [{"system": KIND, "code": kind}]},
            "payload": [{"contentString": text}], **more}


def _reminder(start: datetime, **repeat: Any) -> dict[str, Any]:
    return {"resourceType": "CommunicationRequest", "status": "active", "subject": {"reference": "Patient/p1"},
            "basedOn": [{"reference": "CarePlan/cp1"}], "requester": {"reference": "Practitioner/dr1"},
            "recipient": [{"reference": "Patient/p1"}],
            "category": [{"coding": [{"system": KIND, "code": "adherence"}]}],
            "payload": [{"contentString": "Примите эналаприл 10 мг"}],
            "extension": [{"url": SCHEDULE, "valueTiming": {"repeat": {
                "boundsPeriod": {"start": start.isoformat()}, "period": 1, "periodUnit": "h", **repeat}}}]}


async def _notices(w: Any) -> list[str]:
    items = await w.store.outbox_partition("notification", "Patient/p1", 200)
    texts = []
    for item in reversed(items):
        payload = orjson.loads(item.payload)
        if payload.get("resourceType") == "Communication":
            texts.append(payload["payload"][0]["contentString"])
    return texts


@pytest.mark.req("TM-16")
async def test_recommendations_reach_the_patient_and_reminders_follow_their_schedule(open_world: OpenWorld):
    async with open_world([PLAN]) as w:
        doctor, patient = w.as_("Practitioner/dr1"), w.as_("Patient/p1")
        for kind, text in (("adherence", "Принимайте эналаприл утром"), ("lifestyle", "Ходите 30 минут в день")):
            r = await w.client.post("/Communication", json=_recommendation(kind, text), headers=doctor)
            assert r.status_code == 201, r.text
        loose = _recommendation("lifestyle", "Меньше соли")
        del loose["basedOn"]
        r = await w.client.post("/Communication", json=loose, headers=doctor)
        assert r.status_code == 422 and "care plan" in r.text
        mine = await w.client.get("/Communication?subject=Patient/p1&based-on=CarePlan/cp1", headers=patient)
        assert sorted(e["resource"]["payload"][0]["contentString"] for e in mine.json()["entry"]) == [
            "Принимайте эналаприл утром", "Ходите 30 минут в день"]
        assert {"Принимайте эналаприл утром", "Ходите 30 минут в день"} <= set(await _notices(w))
        other = await w.client.get("/Communication?based-on=CarePlan/cp1", headers=w.as_("Patient/p2"))
        assert other.json().get("entry", []) == []

        now = datetime.now(UTC).replace(microsecond=0)
        r = await w.client.post("/CommunicationRequest", json=_reminder(now - timedelta(minutes=150), count=10),
                                headers=doctor)
        assert r.status_code == 201, r.text
        request = r.json()
        bad = _reminder(now, periodUnit="mo")
        assert (await w.client.post("/CommunicationRequest", json=bad, headers=doctor)).status_code == 422
        scheduler = w.app.state.reminders
        assert await scheduler.run_once(now) == 3  # -150, -90 and -30 minutes have come
        await scheduler.run_once(now)  # nothing is queued twice
        assert (await _notices(w)).count("Примите эналаприл 10 мг") == 3
        await scheduler.run_once(now + timedelta(hours=2))
        assert (await _notices(w)).count("Примите эналаприл 10 мг") == 5
        revoked = {**request, "status": "revoked"}
        assert (await w.client.put(f"/CommunicationRequest/{request['id']}", json=revoked,
                                   headers=doctor)).status_code == 200
        assert await scheduler.run_once(now + timedelta(hours=5)) == 0
        listed = await w.client.get("/Patient/p1/$notifications?_count=100", headers=patient)
        reminders = [e for e in listed.json()["entry"]
                     if "Примите эналаприл 10 мг" in str(e["resource"].get("payload"))]
        assert len(reminders) == 5
