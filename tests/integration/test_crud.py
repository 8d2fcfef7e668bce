"""create, read, vread, update, patch, delete over HTTP (FHIR R4 http.html §3.1.0.2-3.1.0.8)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

# FHIR semantics, not access: the server runs in open mode (security: tests/security_http/).
pytestmark = pytest.mark.open_mode

FHIR_JSON = {"content-type": "application/fhir+json"}


async def _create(client: httpx.AsyncClient, resource: dict[str, Any], **headers: str) -> httpx.Response:
    r = await client.post(f"/{resource['resourceType']}", json=resource, headers={**FHIR_JSON, **headers})
    assert r.status_code in (200, 201), r.text
    return r


def _path(r: httpx.Response) -> str:
    loc = r.headers["location"]
    return loc.split("/_history")[0].removeprefix("http://kzfhir.test")


async def test_create_returns_201_with_location_etag_and_server_meta(client, patient):
    patient["id"] = "client-chosen"
    patient["meta"] = {"versionId": "77", "lastUpdated": "2001-01-01T00:00:00Z", "tag": [{"code": "x"}]}
    r = await _create(client, patient)
    assert r.status_code == 201
    body = r.json()
    assert body["id"] != "client-chosen"  # POST ignores the id in the body
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["lastUpdated"] != "2001-01-01T00:00:00Z"
    assert body["meta"]["tag"] == [{"code": "x"}]
    assert r.headers["etag"] == 'W/"1"'
    assert r.headers["location"] == f"http://kzfhir.test/Patient/{body['id']}/_history/1"
    assert r.headers["last-modified"].endswith("GMT")
    assert r.headers["content-type"].startswith("application/fhir+json")


async def test_read_returns_the_stored_resource_with_version_headers(client, patient):
    created = (await _create(client, patient)).json()
    r = await client.get(f"/Patient/{created['id']}")
    assert r.status_code == 200
    assert r.json() == created
    assert r.headers["etag"] == 'W/"1"'


async def test_decimals_keep_their_exact_text(client):
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "t"},
           "valueQuantity": {"value": 1.50, "unit": "mg"}}
    raw = json.dumps(obs).replace("1.5", "1.50").encode()
    r = await client.post("/Observation", content=raw, headers=FHIR_JSON)
    assert r.status_code == 201
    assert b'"value":1.50' in r.content
    again = await client.get(_path(r))
    assert b'"value":1.50' in again.content


async def test_read_unknown_id_returns_404_outcome(client):
    r = await client.get("/Patient/does-not-exist")
    assert r.status_code == 404
    assert r.json()["resourceType"] == "OperationOutcome"


async def test_update_creates_new_version_and_vread_returns_each(client, patient):
    created = (await _create(client, patient)).json()
    rid = created["id"]
    r = await client.put(f"/Patient/{rid}", json={**created, "gender": "other"}, headers=FHIR_JSON)
    assert r.status_code == 200
    assert r.headers["etag"] == 'W/"2"'
    v1 = await client.get(f"/Patient/{rid}/_history/1")
    v2 = await client.get(f"/Patient/{rid}/_history/2")
    assert v1.json()["gender"] == "male"
    assert v2.json()["gender"] == "other"
    assert (await client.get(f"/Patient/{rid}/_history/3")).status_code == 404


async def test_update_as_create_with_client_id_returns_201(client, patient):
    r = await client.put("/Patient/kz-1", json={**patient, "id": "kz-1"}, headers=FHIR_JSON)
    assert r.status_code == 201
    assert r.headers["location"].endswith("/Patient/kz-1/_history/1")
    assert (await client.get("/Patient/kz-1")).json()["meta"]["versionId"] == "1"


async def test_update_without_id_or_with_other_id_returns_400(client, patient):
    r = await client.put("/Patient/a1", json=patient, headers=FHIR_JSON)
    assert r.status_code == 400
    r = await client.put("/Patient/a1", json={**patient, "id": "b2"}, headers=FHIR_JSON)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["id"]


async def test_if_match_update_returns_412_on_version_mismatch(client, patient):
    created = (await _create(client, patient)).json()
    rid = created["id"]
    ok = await client.put(f"/Patient/{rid}", json=created, headers={**FHIR_JSON, "If-Match": 'W/"1"'})
    assert ok.status_code == 200
    stale = await client.put(f"/Patient/{rid}", json=created, headers={**FHIR_JSON, "If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert stale.json()["resourceType"] == "OperationOutcome"
    assert (await client.get(f"/Patient/{rid}")).headers["etag"] == 'W/"2"'


async def test_delete_then_read_returns_410_and_history_keeps_versions(client, patient):
    rid = (await _create(client, patient)).json()["id"]
    r = await client.delete(f"/Patient/{rid}")
    assert r.status_code == 204
    assert r.headers["etag"] == 'W/"2"'
    gone = await client.get(f"/Patient/{rid}")
    assert gone.status_code == 410
    assert gone.json()["issue"][0]["code"] == "deleted"
    assert (await client.get(f"/Patient/{rid}/_history/1")).status_code == 200
    assert (await client.get(f"/Patient/{rid}/_history/2")).status_code == 410
    hist = (await client.get(f"/Patient/{rid}/_history")).json()
    assert [e["request"]["method"] for e in hist["entry"]] == ["DELETE", "POST"]
    assert "resource" not in hist["entry"][0]


async def test_delete_of_missing_resource_returns_204(client):
    assert (await client.delete("/Patient/never-was")).status_code == 204


async def test_update_after_delete_revives_the_resource_with_next_version(client, patient):
    created = (await _create(client, patient)).json()
    rid = created["id"]
    await client.delete(f"/Patient/{rid}")
    r = await client.put(f"/Patient/{rid}", json=created, headers=FHIR_JSON)
    assert r.status_code == 201
    assert r.json()["meta"]["versionId"] == "3"


async def test_conditional_read_returns_304(client, patient):
    r = await _create(client, patient)
    path = _path(r)
    assert (await client.get(path, headers={"If-None-Match": 'W/"1"'})).status_code == 304
    assert (await client.get(path, headers={"If-None-Match": 'W/"9"'})).status_code == 200
    later = "Fri, 01 Jan 2100 00:00:00 GMT"
    assert (await client.get(path, headers={"If-Modified-Since": later})).status_code == 304
    earlier = "Fri, 01 Jan 2010 00:00:00 GMT"
    assert (await client.get(path, headers={"If-Modified-Since": earlier})).status_code == 200


async def test_prefer_return_minimal_and_operation_outcome(client, patient):
    r = await client.post("/Patient", json=patient, headers={**FHIR_JSON, "Prefer": "return=minimal"})
    assert r.status_code == 201
    assert r.content == b""
    assert "location" in r.headers
    r = await client.post("/Patient", json=patient, headers={**FHIR_JSON, "Prefer": "return=OperationOutcome"})
    assert r.json()["resourceType"] == "OperationOutcome"


async def test_pretty_and_format_parameters(client, patient):
    path = _path(await _create(client, patient))
    pretty = await client.get(f"{path}?_pretty=true")
    assert b"\n  " in pretty.content
    assert (await client.get(f"{path}?_format=json")).status_code == 200
    assert (await client.get(f"{path}?_format=application/fhir%2Bjson")).status_code == 200


async def test_json_patch_changes_the_resource(client, patient):
    path = _path(await _create(client, patient))
    ops = [{"op": "replace", "path": "/gender", "value": "female"}, {"op": "add", "path": "/active", "value": True}]
    r = await client.patch(path, json=ops, headers={"content-type": "application/json-patch+json"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["gender"] == "female" and body["active"] is True
    assert body["meta"]["versionId"] == "2"


async def test_json_patch_producing_invalid_resource_is_rejected_and_nothing_changes(client, patient):
    path = _path(await _create(client, patient))
    ops = [{"op": "replace", "path": "/gender", "value": "robot"}]
    r = await client.patch(path, json=ops, headers={"content-type": "application/json-patch+json"})
    assert r.status_code == 422
    assert (await client.get(path)).json()["meta"]["versionId"] == "1"


async def test_json_patch_test_failure_returns_422(client, patient):
    path = _path(await _create(client, patient))
    ops = [{"op": "test", "path": "/gender", "value": "female"}]
    r = await client.patch(path, json=ops, headers={"content-type": "application/json-patch+json"})
    assert r.status_code == 422
