"""Where collected data come from (AC-05): the patient's words, documents they provide, medical records —
recorded on every resource as it is collected, by who collected it. Security is on."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.orders.conftest import OpenWorld

SOURCE = "https://fhir.kzfhir.kz/CodeSystem/kz-data-source"


def _source(resource: dict[str, Any]) -> list[str]:
    return [t["code"] for t in resource.get("meta", {}).get("tag", []) if t.get("system") == SOURCE]


def _reading(tag: str | None = None) -> dict[str, Any]:
    obs: dict[str, Any] = {"resourceType": "Observation", "status": "final", "code": {"text": "боль, баллы"},
                           "subject": {"reference": "Patient/p1"}, "valueInteger": 3}
    if tag:
        obs["meta"] = {"tag": [{"system": SOURCE, "code": tag}, {"system": "urn:other", "code": "kept"}]}
    return obs


@pytest.mark.req("AC-05")
async def test_every_collected_resource_says_whether_it_is_the_patients_words_document_or_a_record(
        open_world: OpenWorld):
    async with open_world() as w:
        patient, doctor = w.as_("Patient/p1"), w.as_("Practitioner/dr1")
        words = await w.client.post("/Communication", headers=patient, json={
            "resourceType": "Communication", "status": "completed", "subject": {"reference": "Patient/p1"},
            "payload": [{"contentString": "Болит голова третий день"}]})
        assert _source(words.json()) == ["patient-reported"]
        scan = await w.client.post("/DocumentReference", headers=patient, json={
            "resourceType": "DocumentReference", "status": "current", "subject": {"reference": "Patient/p1"},
            "content": [{"attachment": {"contentType": "application/pdf",
                                        "data": base64.b64encode(b"%PDF analysis").decode()}}]})
        assert _source(scan.json()) == ["patient-document"]
        claimed = await w.client.post("/Observation", headers=patient, json=_reading("medical-record"))
        assert claimed.status_code == 201
        assert _source(claimed.json()) == ["patient-reported"]  # a patient never writes a medical record
        assert {"system": "urn:other", "code": "kept"} in claimed.json()["meta"]["tag"]
        record = await w.client.post("/Observation", headers=doctor, json=_reading())
        assert _source(record.json()) == ["medical-record"]
        transcribed = await w.client.post("/Observation", headers=doctor, json=_reading("patient-reported"))
        assert _source(transcribed.json()) == ["patient-reported"]
        # the same on an update and inside a transaction
        changed = {**words.json(), "payload": [{"contentString": "Болит голова четвёртый день"}]}
        changed["meta"] = {"tag": [{"system": SOURCE, "code": "medical-record"}]}
        r = await w.client.put(f"/Communication/{changed['id']}", json=changed, headers=patient)
        assert _source(r.json()) == ["patient-reported"]
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": _reading(), "request": {"method": "POST", "url": "Observation"}}]}
        r = await w.client.post("/", json=bundle, headers=doctor)
        created = r.json()["entry"][0]["response"]["location"].split("/_history")[0]
        assert _source((await w.client.get(f"/{created}", headers=doctor)).json()) == ["medical-record"]
        found = await w.client.get(f"/Observation?_tag={SOURCE}|patient-reported", headers=doctor)
        assert sorted(e["resource"]["id"] for e in found.json()["entry"]) == sorted(
            [claimed.json()["id"], transcribed.json()["id"]])
