"""Conditional create, update and delete (FHIR R4 http.html §3.1.0.4.3, §3.1.0.7.1, §3.1.0.8.1)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from tests.conftest import BASE

# FHIR semantics, not access: the server runs in open mode (security: tests/security_http/).
pytestmark = pytest.mark.open_mode

FHIR_JSON = {"content-type": "application/fhir+json"}
IIN = "https://fhir.kzfhir.kz/sid/iin"


def _patient(iin: str, **extra: object) -> dict:
    return {"resourceType": "Patient", "identifier": [{"system": IIN, "value": iin}], **extra}


async def _total(client, rtype: str = "Patient") -> int:
    return (await client.get(f"/{rtype}/_history")).json()["total"]


async def test_conditional_create_returns_existing_match(client):
    headers = {**FHIR_JSON, "If-None-Exist": f"identifier={IIN}|850315300019"}
    first = await client.post("/Patient", json=_patient("850315300019"), headers=headers)
    second = await client.post("/Patient", json=_patient("850315300019"), headers=headers)
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert await _total(client) == 1


async def test_parallel_conditional_creates_make_exactly_one_resource(client):
    headers = {**FHIR_JSON, "If-None-Exist": f"identifier={IIN}|900101412344"}
    results = await asyncio.gather(*(client.post("/Patient", json=_patient("900101412344"), headers=headers)
                                     for _ in range(20)))
    assert sorted(r.status_code for r in results).count(201) == 1
    assert len({r.json()["id"] for r in results}) == 1
    assert await _total(client) == 1


async def test_conditional_create_with_several_matches_returns_412(client):
    for _ in range(2):
        await client.post("/Patient", json=_patient("040229500421"), headers=FHIR_JSON)
    r = await client.post("/Patient", json=_patient("040229500421"),
                          headers={**FHIR_JSON, "If-None-Exist": f"identifier={IIN}|040229500421"})
    assert r.status_code == 412


async def test_conditional_update_creates_then_updates_the_match(client):
    url = f"/Patient?identifier={IIN}|151231699999"
    r1 = await client.put(url, json=_patient("151231699999", gender="female"), headers=FHIR_JSON)
    assert r1.status_code == 201
    r2 = await client.put(url, json=_patient("151231699999", gender="other"), headers=FHIR_JSON)
    assert r2.status_code == 200
    assert r2.json()["id"] == r1.json()["id"]
    assert r2.json()["meta"]["versionId"] == "2"


async def test_conditional_update_with_several_matches_returns_412(client):
    for _ in range(2):
        await client.post("/Patient", json=_patient("850315301801"), headers=FHIR_JSON)
    r = await client.put(f"/Patient?identifier={IIN}|850315301801", json=_patient("850315301801"),
                         headers=FHIR_JSON)
    assert r.status_code == 412


async def test_conditional_delete_single_and_multiple_setting(client, tmp_path):
    await client.post("/Patient", json=_patient("850315300019"), headers=FHIR_JSON)
    assert (await client.delete(f"/Patient?identifier={IIN}|850315300019")).status_code == 204
    assert (await client.delete(f"/Patient?identifier={IIN}|850315300019")).status_code == 204
    for _ in range(2):
        await client.post("/Patient", json=_patient("900101412344"), headers=FHIR_JSON)
    assert (await client.delete(f"/Patient?identifier={IIN}|900101412344")).status_code == 412

    app = create_app(Settings(database=tmp_path / "m.sqlite", allow_multiple_conditional_delete=True,
                              synchronous_full=False, security_enabled=False))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE
    ) as c:
        for _ in range(3):
            await c.post("/Patient", json=_patient("900101412344"), headers=FHIR_JSON)
        assert (await c.delete(f"/Patient?identifier={IIN}|900101412344")).status_code == 204
        hist = (await c.get("/Patient/_history")).json()
        assert [e["request"]["method"] for e in hist["entry"]].count("DELETE") == 3


@pytest.mark.parametrize("criteria", ["birthdate=not-a-date", "no-such-param=1"])
async def test_conditional_interactions_with_bad_criteria_return_400(client, criteria):
    r = await client.post("/Patient", json=_patient("850315300019"),
                          headers={**FHIR_JSON, "If-None-Exist": criteria})
    assert r.status_code == 400
    assert await _total(client) == 0


async def test_transaction_conditional_create_and_conditional_reference(client):
    await client.post("/Patient", json=_patient("850315300019"), headers=FHIR_JSON)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:aaaaaaaa-0000-0000-0000-000000000001", "resource": _patient("850315300019"),
         "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={IIN}|850315300019"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "t"},
                      "subject": {"reference": "urn:uuid:aaaaaaaa-0000-0000-0000-000000000001"},
                      "performer": [{"reference": f"Patient?identifier={IIN}|850315300019"}]},
         "request": {"method": "POST", "url": "Observation"}},
    ]}
    r = await client.post("/", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["entry"][0]["response"]["status"] == "200 OK"
    pid = body["entry"][0]["resource"]["id"]
    obs = body["entry"][1]["resource"]
    assert obs["subject"]["reference"] == f"Patient/{pid}"
    assert obs["performer"][0]["reference"] == f"Patient/{pid}"
    assert await _total(client) == 1


async def test_transaction_conditional_reference_without_match_fails(client):
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "t"},
                      "subject": {"reference": f"Patient?identifier={IIN}|000"}},
         "request": {"method": "POST", "url": "Observation"}}]}
    r = await client.post("/", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 412
    assert await _total(client, "Observation") == 0
