"""Search over the real SQLite store, with resources written through the HTTP API (create, update,
delete, transaction with urn:uuid references): the store writes index rows in the same unit."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

# FHIR semantics, not access: the server runs in open mode (security: tests/security_http/).
pytestmark = pytest.mark.open_mode

FHIR_JSON = {"content-type": "application/fhir+json"}
IIN = "https://fhir.kzfhir.kz/sid/iin"


async def _search(client: httpx.AsyncClient, resource_type: str | None, params: list[tuple[str, str]],
                  compartment: tuple[str, str] | None = None) -> dict[str, Any]:
    path = f"/{compartment[0]}/{compartment[1]}/{resource_type or '*'}" if compartment else f"/{resource_type or ''}"
    resp = await client.get(path, params=params, headers={"Prefer": "handling=strict"})
    assert resp.status_code == 200, resp.text
    bundle: dict[str, Any] = resp.json()
    return bundle


def _ids(bundle: dict[str, Any]) -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"}


async def _transaction(client: httpx.AsyncClient) -> dict[str, str]:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:11111111-1111-1111-1111-111111111111",
         "resource": {"resourceType": "Patient", "identifier": [{"system": IIN, "value": "850315300019"}],
                      "name": [{"family": "Ахметов", "given": ["Ерлан"]}], "gender": "male", "birthDate": "1985-03-15"},
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "urn:uuid:22222222-2222-2222-2222-222222222222",
         "resource": {"resourceType": "Encounter", "status": "finished", "class": {"code": "VR"},
                      "subject": {"reference": "urn:uuid:11111111-1111-1111-1111-111111111111"}},
         "request": {"method": "POST", "url": "Encounter"}},
        {"resource": {"resourceType": "Observation", "status": "final",
                      "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                      "subject": {"reference": "urn:uuid:11111111-1111-1111-1111-111111111111"},
                      "encounter": {"reference": "urn:uuid:22222222-2222-2222-2222-222222222222"},
                      "effectiveDateTime": "2026-01-10T10:00:00+05:00",
                      "valueQuantity": {"value": 72, "system": "http://unitsofmeasure.org", "code": "/min"}},
         "request": {"method": "POST", "url": "Observation"}},
    ]}
    resp = await client.post("/", json=bundle, headers=FHIR_JSON)
    assert resp.status_code == 200, resp.text
    locations = [e["response"]["location"].split("/_history")[0] for e in resp.json()["entry"]]
    return {loc.split("/")[-2]: loc.split("/")[-1] for loc in locations}


async def test_transaction_references_are_searchable(client: httpx.AsyncClient) -> None:
    ids = await _transaction(client)
    patient = ids["Patient"]
    found = await _search(client, "Observation", [("patient", patient), ("code", "8867-4")])
    assert _ids(found) == {ids["Observation"]}
    assert _ids(await _search(client, "Observation", [("subject:Patient.identifier", f"{IIN}|850315300019")])) == {
        ids["Observation"]}
    assert _ids(await _search(client, "Patient", [("_has:Observation:patient:code", "8867-4")])) == {patient}
    with_obs = await _search(client, "Encounter", [("patient", patient), ("_revinclude", "Observation:encounter")])
    assert {e["resource"]["id"] for e in with_obs["entry"]} == {ids["Encounter"], ids["Observation"]}


async def test_compartment_and_everything_over_the_store(client: httpx.AsyncClient) -> None:
    ids = await _transaction(client)
    patient = ids["Patient"]
    compartment = await _search(client, None, [], compartment=("Patient", patient))
    assert _ids(compartment) == set(ids.values())
    everything = (await client.get(f"/Patient/{patient}/$everything")).json()
    assert everything["total"] == 3


async def test_update_and_delete_rewrite_the_index(client: httpx.AsyncClient, patient: dict[str, Any]) -> None:
    created = (await client.post("/Patient", json=patient, headers=FHIR_JSON)).json()
    pid = created["id"]
    assert _ids(await _search(client, "Patient", [("gender", "male")])) == {pid}
    resp = await client.put(f"/Patient/{pid}", json={**created, "gender": "female"}, headers=FHIR_JSON)
    assert resp.status_code == 200
    assert _ids(await _search(client, "Patient", [("gender", "male")])) == set()
    assert _ids(await _search(client, "Patient", [("gender", "female"), ("name", "ахмет")])) == {pid}
    assert (await client.delete(f"/Patient/{pid}")).status_code in (200, 204)
    assert _ids(await _search(client, "Patient", [("gender", "female")])) == set()
    assert (await _search(client, "Patient", [("_summary", "count")]))["total"] == 0


async def test_last_updated_uses_the_stored_instant(client: httpx.AsyncClient, patient: dict[str, Any]) -> None:
    created = (await client.post("/Patient", json=patient, headers=FHIR_JSON)).json()
    stamp = created["meta"]["lastUpdated"]
    assert _ids(await _search(client, "Patient", [("_lastUpdated", f"ge{stamp}")])) == {created["id"]}
    assert _ids(await _search(client, "Patient", [("_lastUpdated", f"gt{stamp}")])) == set()
    assert _ids(await _search(client, "Patient", [("_lastUpdated", f"lt{stamp}")])) == set()
