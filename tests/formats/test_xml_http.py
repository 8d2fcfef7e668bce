"""FHIR XML over HTTP: negotiation, XML bodies, Bundles, OperationOutcomes, $validate (http.html §3.1.0.1.6-7)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from lxml import etree

from fhir_server.formats import resource_from_xml, resource_to_xml
from tests.conftest import BASE

# FHIR semantics, not access: the server runs in open mode (the secured form: test_xml_http_secure.py).
pytestmark = pytest.mark.open_mode

XML = "application/fhir+xml"
SEND_XML = {"content-type": XML, "accept": XML}
F = "{http://hl7.org/fhir}"


def _fhir_xml(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/fhir+xml; charset=utf-8"
    return resource_from_xml(r.content)


def _outcome(r: httpx.Response, status: int) -> dict[str, Any]:
    body = _fhir_xml(r, status)
    assert body["resourceType"] == "OperationOutcome"
    return body


async def _create(client: httpx.AsyncClient, resource: dict[str, Any]) -> str:
    r = await client.post(f"/{resource['resourceType']}", content=resource_to_xml(resource), headers=SEND_XML)
    created = _fhir_xml(r, 201)
    return f"/{created['resourceType']}/{created['id']}"


async def test_xml_create_is_stored_as_the_same_json(client, patient):
    path = await _create(client, patient)
    stored = (await client.get(path)).json()
    assert {k: v for k, v in stored.items() if k not in ("id", "meta")} == patient


@pytest.mark.parametrize("fmt", ["xml", "text/xml", "application/xml", "application/fhir+xml",
                                 "application/fhir xml"])
async def test_every_format_value_the_spec_names_gives_xml(client, patient, fmt):
    path = await _create(client, patient)
    r = await client.get(path, params={"_format": fmt})
    assert _fhir_xml(r, 200)["gender"] == "male"


@pytest.mark.parametrize(("accept", "xml"), [
    ("application/fhir+xml", True),
    ("application/xml", True),
    ("text/xml", True),
    ("application/fhir+json;q=0.5, application/fhir+xml", True),
    ("application/fhir+xml;q=0.2, */*", False),
    ("application/fhir+xml, */*;q=0.9", True),
    ("application/fhir+json, application/fhir+xml", False),
    ("application/fhir+xml, application/fhir+json", True),
    ("*/*", False),
    ("application/fhir+xml;q=0, application/json", False),
])
async def test_accept_is_ranked_by_quality_and_json_wins_wildcards(client, patient, accept, xml):
    path = await _create(client, patient)
    r = await client.get(path, headers={"accept": accept})  # a plain read: the fast path's decision too
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(XML if xml else "application/fhir+json")


async def test_format_parameter_overrides_accept(client, patient):
    path = await _create(client, patient)
    r = await client.get(path, params={"_format": "json"}, headers={"accept": XML})
    assert r.headers["content-type"].startswith("application/fhir+json")


async def test_turtle_is_not_acceptable_and_says_so_in_json(client, patient):
    path = await _create(client, patient)
    r = await client.get(path, headers={"accept": "text/turtle"})
    assert r.status_code == 406 and r.json()["resourceType"] == "OperationOutcome"


async def test_pretty_xml_is_indented(client, patient):
    path = await _create(client, patient)
    r = await client.get(path, params={"_format": "xml", "_pretty": "true"})
    assert "\n  <gender value=\"male\"/>\n" in r.text


async def test_update_vread_and_history_in_xml(client, patient):
    path = await _create(client, patient)
    rid = path.rsplit("/", 1)[1]
    changed = {**patient, "id": rid, "gender": "female"}
    r = await client.put(path, content=resource_to_xml(changed), headers=SEND_XML)
    assert _fhir_xml(r, 200)["gender"] == "female"
    assert _fhir_xml(await client.get(f"{path}/_history/1", headers={"accept": XML}), 200)["gender"] == "male"
    await client.delete(path)
    history = _fhir_xml(await client.get(f"{path}/_history", headers={"accept": XML}), 200)
    assert history["type"] == "history"
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "PUT", "POST"]
    assert "resource" not in history["entry"][0]


async def test_search_bundle_in_xml_wraps_each_resource(client, patient):
    await _create(client, patient)
    r = await client.get("/Patient", params={"gender": "male", "_format": "xml"})
    root = etree.fromstring(r.content)
    assert root.tag == F + "Bundle"
    assert root.find(f"{F}entry/{F}resource/{F}Patient/{F}gender").get("value") == "male"
    assert _fhir_xml(r, 200)["total"] == 1


async def test_transaction_in_xml_answers_in_xml(client, patient):
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:8f4f4f6a-4b1e-4a55-9d7e-0c2b5e1f0a01", "resource": patient,
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "hr"},
                      "subject": {"reference": "urn:uuid:8f4f4f6a-4b1e-4a55-9d7e-0c2b5e1f0a01"}},
         "request": {"method": "POST", "url": "Observation"}}]}
    r = await client.post("/", content=resource_to_xml(bundle), headers=SEND_XML)
    body = _fhir_xml(r, 200)
    assert body["type"] == "transaction-response"
    assert [e["response"]["status"] for e in body["entry"]] == ["201 Created", "201 Created"]


async def test_validate_takes_an_xml_body_and_answers_in_xml(client):
    bad = resource_to_xml({"resourceType": "Patient", "gender": "robot"})
    body = _outcome(await client.post("/Patient/$validate", content=bad, headers=SEND_XML), 200)
    assert any("Patient.gender" in i.get("expression", []) for i in body["issue"] if i["severity"] == "error")
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": {"resourceType": "Patient", "gender": "male"}}]}
    ok = _outcome(await client.post("/Patient/$validate", content=resource_to_xml(params), headers=SEND_XML), 200)
    assert not [i for i in ok["issue"] if i["severity"] in ("error", "fatal")]


async def test_decimals_stay_exact_through_xml_and_json(client):
    xml = (b'<Observation xmlns="http://hl7.org/fhir"><status value="final"/><code><text value="w"/></code>'
           b'<valueQuantity><value value="70.50"/><unit value="kg"/></valueQuantity></Observation>')
    r = await client.post("/Observation", content=xml, headers=SEND_XML)
    path = "/Observation/" + _fhir_xml(r, 201)["id"]
    assert b'"value":70.50' in (await client.get(path)).content
    assert b'<value value="70.50"/>' in (await client.get(path, headers={"accept": XML})).content


@pytest.mark.parametrize(("body", "status", "expression"), [
    (b"<Patient xmlns='http://hl7.org/fhir'><colour value='blue'/></Patient>", 400, "Patient.colour"),
    (b"<Patient xmlns='http://hl7.org/fhir'><active value='yes'/></Patient>", 400, "Patient.active"),
    (b"<Patient xmlns='http://hl7.org/fhir'><gender value='robot'/></Patient>", 422, "Patient.gender"),
    (b"<Patient xmlns='http://hl7.org/fhir'><birthDate value='1990-13-01'/></Patient>", 422, "Patient.birthDate"),
])
async def test_bad_xml_content_is_an_xml_outcome_naming_the_element(client, body, status, expression):
    outcome = _outcome(await client.post("/Patient", content=body, headers=SEND_XML), status)
    assert any(expression in i.get("expression", []) for i in outcome["issue"]), outcome


@pytest.mark.parametrize("body", [b"<Patient", b"<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><x>&e;</x>",
                                  b"<Spaceship xmlns='http://hl7.org/fhir'/>"])
async def test_malformed_or_unsafe_xml_is_a_400_and_writes_nothing(client, body):
    _outcome(await client.post("/Patient", content=body, headers=SEND_XML), 400)
    assert (await client.get("/Patient/_history")).json()["total"] == 0


async def test_an_xml_body_without_content_type_is_read_as_xml(client, patient):
    r = await client.post("/Patient", content=resource_to_xml(patient), headers={"accept": XML})
    assert _fhir_xml(r, 201)["gender"] == "male"


async def test_errors_follow_the_negotiated_format(client):
    _outcome(await client.get("/Patient/missing", headers={"accept": XML}), 404)
    _outcome(await client.get("/Spaceship/1", params={"_format": "xml"}), 404)
    _outcome(await client.get("/Patient/1/2/3/4/5", headers={"accept": XML}), 404)
    _outcome(await client.post("/Patient", content=b"x", headers={"content-type": "text/plain", "accept": XML}), 415)
    assert (await client.get("/Patient/missing")).json()["resourceType"] == "OperationOutcome"


async def test_an_xml_patch_body_must_be_a_fhirpath_patch_parameters(client, patient):
    # XML is a FHIRPath Patch media type (R4 http.html#patch); a whole Patient is no patch document
    path = await _create(client, patient)
    r = await client.patch(path, content=resource_to_xml(patient), headers=SEND_XML)
    assert "FHIRPath Patch is a Parameters" in _outcome(r, 400)["issue"][0]["diagnostics"]


async def test_metadata_in_xml(client):
    root = etree.fromstring((await client.get("/metadata", params={"_format": "xml"})).content)
    assert root.tag == F + "CapabilityStatement"


async def test_location_and_etag_are_unchanged_by_the_format(client, patient):
    r = await client.post("/Patient", content=resource_to_xml(patient), headers=SEND_XML)
    assert r.headers["location"].startswith(f"{BASE}/Patient/") and r.headers["etag"] == 'W/"1"'


async def test_a_stored_string_xml_cannot_carry_is_a_406_for_an_xml_read(client):
    r = await client.post("/Patient", json={"resourceType": "Patient", "name": [{"text": "bell \x07"}]},
                          headers={"content-type": "application/fhir+json"})
    path = f"/Patient/{r.json()['id']}"
    outcome = _outcome(await client.get(path, headers={"accept": XML}), 406)
    assert "Patient.name[0].text" in outcome["issue"][0]["diagnostics"]
    assert (await client.get(path)).json()["name"][0]["text"] == "bell \x07"


def test_an_error_outcome_xml_cannot_carry_falls_back_to_json():
    from starlette.requests import Request

    from fhir_server.api.errors import error_response
    from fhir_server.errors import FhirError

    request = Request({"type": "http", "method": "GET", "path": "/", "query_string": b"",
                       "headers": [(b"accept", XML.encode())]})
    assert error_response(FhirError("invalid", "ok"), request).media_type.startswith(XML)
    fallback = error_response(FhirError("invalid", "bell \x07"), request)
    assert fallback.status_code == 400 and fallback.media_type.startswith("application/fhir+json")


def test_a_body_that_is_not_a_resource_stays_json_under_an_xml_accept():
    from starlette.requests import Request

    from fhir_server.api.common import format_body

    request = Request({"type": "http", "method": "GET", "path": "/", "query_string": b"",
                       "headers": [(b"accept", XML.encode())]})
    manifest = b'{"transactionTime":"2024-01-01T00:00:00Z","output":[]}'
    assert format_body(request, manifest) == (manifest, "application/fhir+json; charset=utf-8")
    body, media = format_body(request, b'{"resourceType":"Patient","gender":"male"}')
    assert media.startswith(XML) and b'<gender value="male"/>' in body
