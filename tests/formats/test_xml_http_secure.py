"""FHIR XML with security on (the default test server): tokens, audit and denials are format-blind."""

from __future__ import annotations

from lxml import etree

from fhir_server.formats import resource_from_xml, resource_to_xml

XML = "application/fhir+xml"
BIN = "940140000385"


async def test_a_system_writes_in_xml_and_its_consentless_read_is_denied_in_xml(client, auth, patient):
    system = auth("system", None, bin=BIN)
    r = await client.post("/Patient", content=resource_to_xml(patient),
                          headers={**system, "content-type": XML, "accept": XML})
    assert r.status_code == 201, r.text
    created = resource_from_xml(r.content)
    assert created["birthDate"] == patient["birthDate"]
    # No consent or care relationship names this organisation: deny by default (AC-12), in XML.
    read = await client.get(f"/Patient/{created['id']}", headers={**system, "accept": XML})
    assert read.status_code == 403
    assert resource_from_xml(read.content)["issue"][0]["code"] == "forbidden"
    assert (await client.get(f"/Patient/{created['id']}", headers=system)).json()["resourceType"] == "OperationOutcome"


async def test_an_unauthenticated_xml_request_gets_a_401_outcome_in_xml(client):
    r = await client.get("/Patient/anyone", headers={"accept": XML})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert etree.fromstring(r.content).tag == "{http://hl7.org/fhir}OperationOutcome"
    r = await client.post("/Patient", content=b"<Patient xmlns='http://hl7.org/fhir'/>",
                          headers={"content-type": XML, "accept": XML})
    assert r.status_code == 401 and resource_from_xml(r.content)["issue"][0]["code"] == "login"
