"""batch and transaction at POST [base] (FHIR R4 http.html §3.1.0.11)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

# FHIR semantics, not access: the server runs in open mode (security: tests/security_http/).
pytestmark = pytest.mark.open_mode

FHIR_JSON = {"content-type": "application/fhir+json"}


def _tx(entries: list[dict[str, Any]], kind: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def _post(resource: dict[str, Any], full_url: str | None = None, **request: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"],
                                                               **request}}
    if full_url:
        entry["fullUrl"] = full_url
    return entry


PATIENT = {"resourceType": "Patient", "identifier": [{"system": "urn:test", "value": "p1"}], "gender": "female"}


async def _count(client, rtype: str) -> int:
    return (await client.get(f"/{rtype}/_history")).json()["total"]


async def test_transaction_resolves_urn_uuid_references(client):
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "hr"},
           "subject": {"reference": "urn:uuid:11111111-1111-1111-1111-111111111111"}}
    r = await client.post("/", json=_tx([_post(obs), _post(PATIENT, "urn:uuid:11111111-1111-1111-1111-111111111111")]),
                          headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in body["entry"]]
    assert statuses == ["201 Created", "201 Created"]
    obs_loc, pat_loc = (e["response"]["location"] for e in body["entry"])
    stored_obs = (await client.get("/" + obs_loc.split("/_history")[0])).json()
    assert stored_obs["subject"]["reference"] == pat_loc.split("/_history")[0]
    assert (await client.get("/" + stored_obs["subject"]["reference"])).status_code == 200


async def test_failing_entry_leaves_store_unchanged(client):
    bad = {"resourceType": "Observation", "status": "not-a-status", "code": {"text": "x"}}
    r = await client.post("/", json=_tx([_post(PATIENT), _post(bad)]), headers=FHIR_JSON)
    assert r.status_code == 422
    issue = r.json()["issue"][0]
    assert issue["expression"][0].startswith("Bundle.entry[1].resource")
    assert await _count(client, "Patient") == 0


async def test_unresolvable_urn_reference_fails_the_transaction(client):
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "hr"},
           "subject": {"reference": "urn:uuid:99999999-1111-1111-1111-111111111111"}}
    r = await client.post("/", json=_tx([_post(PATIENT), _post(obs)]), headers=FHIR_JSON)
    assert r.status_code == 404
    assert await _count(client, "Patient") == 0


async def test_if_match_conflict_in_transaction_rolls_back_everything(client):
    await client.put("/Patient/p1", json={**PATIENT, "id": "p1"}, headers=FHIR_JSON)
    entries = [_post({"resourceType": "Organization", "name": "A"}),
               {"resource": {**PATIENT, "id": "p1", "gender": "male"},
                "request": {"method": "PUT", "url": "Patient/p1", "ifMatch": 'W/"5"'}}]
    r = await client.post("/", json=_tx(entries), headers=FHIR_JSON)
    assert r.status_code == 412
    assert await _count(client, "Organization") == 0
    assert (await client.get("/Patient/p1")).json()["gender"] == "female"


async def test_processing_order_delete_post_put_get(client):
    await client.put("/Patient/old", json={**PATIENT, "id": "old"}, headers=FHIR_JSON)
    entries = [
        {"request": {"method": "GET", "url": "Patient/old"}},
        {"resource": {**PATIENT, "id": "new", "gender": "male"}, "request": {"method": "PUT", "url": "Patient/new"}},
        {"request": {"method": "DELETE", "url": "Patient/old"}},
    ]
    body = (await client.post("/", json=_tx(entries), headers=FHIR_JSON)).json()
    # GET runs last, after the DELETE: it sees the resource gone
    assert body["entry"][0]["response"]["status"].startswith("410")
    assert body["entry"][1]["response"]["status"] == "201 Created"
    assert body["entry"][2]["response"]["status"] == "204 No Content"


async def test_same_resource_changed_twice_in_a_transaction_is_rejected(client):
    entries = [{"resource": {**PATIENT, "id": "d"}, "request": {"method": "PUT", "url": "Patient/d"}},
               {"request": {"method": "DELETE", "url": "Patient/d"}}]
    r = await client.post("/", json=_tx(entries), headers=FHIR_JSON)
    assert r.status_code == 400


async def test_transaction_patch_entry_with_binary_json_patch(client):
    await client.put("/Patient/pp", json={**PATIENT, "id": "pp"}, headers=FHIR_JSON)
    patch = base64.b64encode(json.dumps([{"op": "replace", "path": "/gender", "value": "male"}]).encode()).decode()
    entries = [{"resource": {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": patch},
                "request": {"method": "PATCH", "url": "Patient/pp"}}]
    r = await client.post("/", json=_tx(entries), headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    assert (await client.get("/Patient/pp")).json()["gender"] == "male"


async def test_batch_entries_fail_independently(client):
    bad = {"resourceType": "Observation", "status": "nope", "code": {"text": "x"}}
    entries = [_post(PATIENT), _post(bad), {"request": {"method": "GET", "url": "Patient/missing"}},
               {"request": {"method": "FETCH", "url": "Patient"}}]
    r = await client.post("/", json=_tx(entries, "batch"), headers=FHIR_JSON)
    assert r.status_code == 200
    body = r.json()
    assert body["type"] == "batch-response"
    statuses = [e["response"]["status"][:3] for e in body["entry"]]
    assert statuses == ["201", "422", "404", "400"]
    assert body["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert await _count(client, "Patient") == 1


async def test_bundle_must_be_batch_or_transaction(client):
    r = await client.post("/", json={"resourceType": "Bundle", "type": "collection"}, headers=FHIR_JSON)
    assert r.status_code == 400
    r = await client.post("/", json=PATIENT, headers=FHIR_JSON)
    assert r.status_code == 400


async def test_transaction_entry_without_request_is_rejected(client):
    r = await client.post("/", json=_tx([{"resource": PATIENT}]), headers=FHIR_JSON)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["Bundle.entry[0].request"]
