"""Every kind of bad input gets an OperationOutcome with the status the FHIR spec gives (issue 2 §8)."""

from __future__ import annotations

import httpx
import pytest

from fhir_server.config import Settings

# FHIR semantics, not access: the server runs in open mode (security: tests/security_http/).
pytestmark = pytest.mark.open_mode

FHIR_JSON = {"content-type": "application/fhir+json"}


def _outcome(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"] and all("severity" in i and "code" in i for i in body["issue"])
    return body


@pytest.mark.parametrize("raw", [b"{", b"not json", b'{"resourceType": "Patient",}', b"\xff\xfe", b"[1,2", b"",
                                 b'{"resourceType":"Patient","x":NaN}'])
async def test_malformed_json_returns_400(client, raw):
    _outcome(await client.post("/Patient", content=raw, headers=FHIR_JSON), 400)


async def test_utf8_bom_is_tolerated(client, patient):
    import json

    raw = b"\xef\xbb\xbf" + json.dumps(patient).encode()
    assert (await client.post("/Patient", content=raw, headers=FHIR_JSON)).status_code == 201


async def test_unknown_type_returns_404(client, patient):
    _outcome(await client.get("/Spaceship/1"), 404)
    _outcome(await client.post("/Spaceship", json=patient, headers=FHIR_JSON), 404)


async def test_resource_type_mismatch_returns_400(client, patient):
    body = _outcome(await client.post("/Observation", json=patient, headers=FHIR_JSON), 400)
    assert body["issue"][0]["expression"] == ["resourceType"]


async def test_body_not_an_object_returns_400(client):
    _outcome(await client.post("/Patient", json=[1, 2], headers=FHIR_JSON), 400)


@pytest.mark.parametrize(
    ("resource", "expression"),
    [
        ({"resourceType": "Patient", "colour": "blue"}, "Patient.colour"),
        ({"resourceType": "Patient", "gender": "robot"}, "Patient.gender"),
        ({"resourceType": "Patient", "birthDate": "1990-13-01"}, "Patient.birthDate"),
        ({"resourceType": "Patient", "birthDate": "2002-02-29"}, "Patient.birthDate"),
        ({"resourceType": "Patient", "active": "yes"}, "Patient.active"),
        ({"resourceType": "Patient", "name": {"family": "X"}}, "Patient.name"),
        ({"resourceType": "Patient", "name": []}, "Patient.name"),
        ({"resourceType": "Patient", "gender": None}, "Patient.gender"),
        ({"resourceType": "Patient", "multipleBirthBoolean": True, "multipleBirthInteger": 2}, "Patient"),
        ({"resourceType": "Patient", "name": [{"given": ["A", ""]}]}, "Patient.name[0].given[1]"),
        ({"resourceType": "Observation", "code": {"text": "x"}}, "Observation.status"),
        ({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueInteger": 1.5},
         "Observation.valueInteger"),
        ({"resourceType": "Patient", "contained": [{"resourceType": "Nope", "id": "a"}]}, "Patient.contained[0]"),
        ({"resourceType": "Patient", "contained": [{"resourceType": "Practitioner", "id": "p", "foo": 1}]},
         "Patient.contained[0].foo"),
    ],
)
async def test_invalid_content_returns_422_with_expression(client, resource, expression):
    body = _outcome(await client.post(f"/{resource['resourceType']}", json=resource, headers=FHIR_JSON), 422)
    assert any(expression in i.get("expression", []) for i in body["issue"]), body


async def test_invalid_id_in_url_returns_400(client):
    _outcome(await client.get("/Patient/" + "x" * 65), 400)
    _outcome(await client.get("/Patient/a_b"), 400)


async def test_unsupported_media_type_returns_415(client, patient):
    import json

    r = await client.post("/Patient", content=json.dumps(patient), headers={"content-type": "text/plain"})
    _outcome(r, 415)
    r = await client.post("/Patient", content="@prefix fhir: <http://hl7.org/fhir/> .",
                          headers={"content-type": "application/fhir+turtle"})
    _outcome(r, 415)


async def test_not_acceptable_returns_406_and_writes_nothing(client, patient):
    r = await client.post("/Patient", json=patient, headers={**FHIR_JSON, "accept": "application/fhir+turtle"})
    _outcome(r, 406)
    _outcome(await client.get("/Patient/x?_format=ttl"), 406)
    hist = (await client.get("/Patient/_history")).json()
    assert hist["total"] == 0


async def test_body_over_limit_returns_413(tmp_path, patient):
    from fhir_server.api.app import create_app

    app = create_app(Settings(database=tmp_path / "db.sqlite", max_body_bytes=1000,
                              synchronous_full=False, security_enabled=False))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as c:
        big = {**patient, "name": [{"family": "x" * 5000}]}
        _outcome(await c.post("/Patient", json=big, headers=FHIR_JSON), 413)


async def test_bad_if_match_header_returns_400(client, patient):
    r = await client.put("/Patient/a", json={**patient, "id": "a"}, headers={**FHIR_JSON, "If-Match": "banana"})
    _outcome(r, 400)


async def test_unknown_endpoint_and_method_give_outcomes(client):
    _outcome(await client.get("/Patient/1/2/3/4/5"), 404)
    _outcome(await client.post("/Patient/1"), 405)


async def test_bad_history_parameters_return_400(client):
    _outcome(await client.get("/_history?_since=yesterday"), 400)
    _outcome(await client.get("/_history?_count=-1"), 400)
    _outcome(await client.get("/_history?_at=2020-13"), 400)
