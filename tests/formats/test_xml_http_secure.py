"""FHIR XML with security on (the default test server): authentication and policy decisions are the
same for an XML body, and their OperationOutcomes come in the negotiated format."""

from __future__ import annotations

from lxml import etree

from fhir_server.formats import resource_from_xml, resource_to_xml

XML = "application/fhir+xml"
BIN = "940140000385"


async def test_a_denied_xml_write_is_a_403_outcome_in_xml_and_writes_nothing(client, auth, patient):
    system = auth("system", None, bin=BIN)
    r = await client.post("/Patient", content=resource_to_xml(patient),
                          headers={**system, "content-type": XML, "accept": XML})
    # No consent of the new Patient names this organisation: deny by default (AC-12), judged on the
    # same dict a JSON body gives, and answered in the format asked for.
    assert r.status_code == 403, r.text
    assert resource_from_xml(r.content)["issue"][0]["code"] == "forbidden"
    json_r = await client.post("/Patient", json=patient, headers={**system, "content-type": "application/fhir+json"})
    assert json_r.status_code == 403 and json_r.json()["issue"][0]["diagnostics"] == resource_from_xml(
        r.content)["issue"][0]["diagnostics"]


async def test_an_unauthenticated_xml_request_gets_a_401_outcome_in_xml(client):
    r = await client.get("/Patient/anyone", headers={"accept": XML})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert etree.fromstring(r.content).tag == "{http://hl7.org/fhir}OperationOutcome"
    r = await client.post("/Patient", content=b"<Patient xmlns='http://hl7.org/fhir'/>",
                          headers={"content-type": XML, "accept": XML})
    assert r.status_code == 401 and resource_from_xml(r.content)["issue"][0]["code"] == "login"
