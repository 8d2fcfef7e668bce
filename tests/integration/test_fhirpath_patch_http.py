"""FHIRPath Patch (R4 fhirpatch.html) beside JSON Patch: on instances, conditionally, and in transactions
(issue 14 §4); the body must match its Content-Type."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.open_mode

FHIR_JSON = {"content-type": "application/fhir+json"}
PATIENT = {"resourceType": "Patient", "gender": "female", "name": [{"family": "Сейтова", "given": ["Айгерим"]}],
           "identifier": [{"system": "urn:kzfhir:test", "value": "fp-1"}]}


def _replace(path: str, **value: object) -> dict[str, object]:
    return {"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
        {"name": "type", "valueCode": "replace"}, {"name": "path", "valueString": path},
        {"name": "value", **value}]}]}


async def _created(client) -> dict[str, object]:
    r = await client.post("/Patient", json=PATIENT, headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    return r.json()


async def test_fhirpath_patch_on_an_instance_and_conditionally(client):
    pid = (await _created(client))["id"]
    r = await client.patch(f"/Patient/{pid}", json=_replace("Patient.gender", valueCode="male"), headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    assert r.json()["gender"] == "male" and r.json()["meta"]["versionId"] == "2"
    add = {"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
        {"name": "type", "valueCode": "add"}, {"name": "path", "valueString": "Patient"},
        {"name": "name", "valueString": "birthDate"}, {"name": "value", "valueDate": "1990-01-02"}]}]}
    r = await client.patch("/Patient?identifier=urn:kzfhir:test|fp-1", json=add, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    assert r.json()["birthDate"] == "1990-01-02"


async def test_fhirpath_patch_in_a_transaction(client):
    pid = (await _created(client))["id"]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": _replace("Patient.name.family", valueString="Нурланова"),
         "request": {"method": "PATCH", "url": f"Patient/{pid}"}}]}
    r = await client.post("/", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    assert (await client.get(f"/Patient/{pid}")).json()["name"][0]["family"] == "Нурланова"


async def test_a_patch_body_must_match_its_content_type(client):
    pid = (await _created(client))["id"]
    ops = [{"op": "replace", "path": "/gender", "value": "male"}]
    r = await client.patch(f"/Patient/{pid}", json=ops, headers=FHIR_JSON)  # JSON Patch sent as FHIR JSON
    assert r.status_code == 400 and "json-patch" in r.json()["issue"][0]["diagnostics"]
    r = await client.patch(f"/Patient/{pid}", json=_replace("Patient.gender", valueCode="male"),
                           headers={"content-type": "application/json-patch+json"})
    assert r.status_code == 400
    bad = _replace("Patient.gender", valueCode="no-such-gender")
    r = await client.patch(f"/Patient/{pid}", json=bad, headers=FHIR_JSON)
    assert r.status_code == 422  # the patched resource is validated like any update
    assert (await client.get(f"/Patient/{pid}")).json()["meta"]["versionId"] == "1"
