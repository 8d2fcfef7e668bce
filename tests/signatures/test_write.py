"""Signed records written over HTTP: verified, refused with the reason, recorded in a Provenance."""

from __future__ import annotations

import base64
import copy
import json

import pytest
from cryptography import x509

from fhir_server.security.refs import BIN_SYSTEM, IIN_SYSTEM
from fhir_server.signatures import SIGNER_CERTIFICATE
from tests.signatures.helpers import (
    DOCTOR_IIN,
    FHIR_JSON,
    ORG_BIN,
    ORGANIZATION_URN,
    ServerFactory,
    Sign,
    diagnostics,
    document_bundle,
    provenances,
)

pytestmark = [pytest.mark.req("AC-25"), pytest.mark.req("TM-10")]
MIS = "http://mis.example.kz/fhir"


@pytest.mark.parametrize("fmt", ["cms", "jws", "xml"])
async def test_signed_document_is_accepted_and_keeps_its_signature(server: ServerFactory, sign: Sign,
                                                                   fmt: str) -> None:
    signed = await sign(document_bundle(), fmt=fmt)
    async with server() as client:
        response = await client.post("/Bundle", json=signed, headers=FHIR_JSON)
        assert response.status_code == 201, response.text
        stored = response.json()
        assert stored["signature"] == signed["signature"]
        assert stored["id"] != signed.get("id")  # the server's id: #document canonicalization ignores it


async def test_signed_document_gets_a_provenance_naming_signer_time_and_certificate(
        server: ServerFactory, sign: Sign, pki_dir: object) -> None:
    signed = await sign(document_bundle())
    async with server() as client:
        stored = (await client.post("/Bundle", json=signed, headers=FHIR_JSON)).json()
        [provenance] = await provenances(client)
    assert provenance["target"] == [{"reference": f"Bundle/{stored['id']}/_history/1"}]
    assert provenance["recorded"] == stored["meta"]["lastUpdated"]  # written in the same unit
    assert provenance["occurredDateTime"] == signed["signature"]["when"]
    [agent] = provenance["agent"]
    assert agent["type"]["coding"][0]["code"] == "author"
    assert agent["who"]["identifier"] == {"system": IIN_SYSTEM, "value": DOCTOR_IIN}
    assert agent["who"]["type"] == "Practitioner"
    [signature] = provenance["signature"]
    assert signature["data"] == signed["signature"]["data"]
    [extension] = [e for e in signature["extension"] if e["url"] == SIGNER_CERTIFICATE]
    facts = {e["url"]: next(v for k, v in e.items() if k.startswith("value")) for e in extension["extension"]}
    cert = x509.load_der_x509_certificate(base64.b64decode(facts["certificate"]))
    assert f"IIN{DOCTOR_IIN}" in cert.subject.rfc4514_string()
    assert facts["iin"] == {"system": IIN_SYSTEM, "value": DOCTOR_IIN}
    assert facts["trusted"] is True
    assert "SERIALNUMBER=IIN123456789011" in facts["subject"]


async def test_employee_signature_records_the_organisation_it_acts_for(server: ServerFactory,
                                                                      sign: Sign) -> None:
    bundle = document_bundle(practitioner_iin="123456789013")
    signed = await sign(bundle, signer="employee")
    signed["signature"]["onBehalfOf"] = {"reference": ORGANIZATION_URN}  # not signed: #document drops it
    async with server() as client:
        response = await client.post("/Bundle", json=signed, headers=FHIR_JSON)
        assert response.status_code == 201, response.text
        [provenance] = await provenances(client)
    assert provenance["agent"][0]["onBehalfOf"]["identifier"] == {"system": BIN_SYSTEM, "value": ORG_BIN}


async def test_tampered_document_is_refused_with_the_reason(server: ServerFactory, sign: Sign) -> None:
    signed = await sign(document_bundle())
    signed["entry"][4]["resource"]["valueQuantity"]["value"] = 39.9
    async with server() as client:
        response = await client.post("/Bundle", json=signed, headers=FHIR_JSON)
        assert response.status_code == 422
        assert "digest-mismatch" in diagnostics(response)
        assert response.json()["issue"][0]["expression"] == ["Bundle.signature"]
        assert await provenances(client) == []


async def test_unsigned_document_is_refused_when_signatures_are_required(server: ServerFactory) -> None:
    async with server() as client:
        response = await client.post("/Bundle", json=document_bundle(), headers=FHIR_JSON)
    assert response.status_code == 422
    issue = response.json()["issue"][0]
    assert (issue["code"], issue["expression"]) == ("required", ["Bundle.signature"])


async def test_unsigned_composition_record_is_refused_when_signatures_are_required(
        server: ServerFactory) -> None:
    record = document_bundle()
    record["type"] = "collection"  # not a document, but its first entry makes it a Composition-based record
    async with server() as client:
        response = await client.post("/Bundle", json=record, headers=FHIR_JSON)
    assert response.status_code == 422
    assert response.json()["issue"][0]["code"] == "required"


async def test_unsigned_document_is_accepted_when_signatures_are_optional(server: ServerFactory) -> None:
    async with server(require_signatures=False) as client:
        response = await client.post("/Bundle", json=document_bundle(), headers=FHIR_JSON)
        assert response.status_code == 201, response.text
        assert await provenances(client) == []


async def test_unsigned_bundles_that_are_not_records_need_no_signature(server: ServerFactory) -> None:
    collection = {"resourceType": "Bundle", "type": "collection",
                  "entry": [{"resource": {"resourceType": "Patient", "id": "x"}}]}
    async with server() as client:
        response = await client.post("/Bundle", json=collection, headers=FHIR_JSON)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(("signer", "iin", "reason"), [
    ("revoked", "123456789017", "certificate-revoked"),
    ("expired", "123456789015", "certificate-expired"),
    ("not-yet-valid", "123456789016", "certificate-not-yet-valid"),
    ("untrusted", "123456789018", "untrusted-chain"),
    ("doctor-auth", DOCTOR_IIN, "wrong-key-usage"),
])
async def test_certificate_problems_are_refused_each_with_its_own_reason(
        server: ServerFactory, sign: Sign, signer: str, iin: str, reason: str) -> None:
    signed = await sign(document_bundle(practitioner_iin=iin), signer=signer)
    async with server() as client:
        response = await client.post("/Bundle", json=signed, headers=FHIR_JSON)
    assert response.status_code == 422
    assert reason in diagnostics(response)


async def test_signer_certificate_of_another_person_is_refused(server: ServerFactory, sign: Sign) -> None:
    signed = await sign(document_bundle(practitioner_iin=DOCTOR_IIN), signer="doctor-ec")  # IIN ...012
    async with server() as client:
        response = await client.post("/Bundle", json=signed, headers=FHIR_JSON)
    assert response.status_code == 422
    assert "iin-mismatch" in diagnostics(response)
    assert DOCTOR_IIN in diagnostics(response)


async def test_signer_named_by_identifier_only_is_checked(server: ServerFactory, sign: Sign) -> None:
    who = {"type": "Practitioner", "identifier": {"system": IIN_SYSTEM, "value": "123456789099"}}
    signed = await sign(document_bundle(), who=who)
    async with server() as client:
        response = await client.post("/Bundle", json=signed, headers=FHIR_JSON)
    assert response.status_code == 422
    assert "iin-mismatch" in diagnostics(response)


async def test_signer_that_cannot_be_identified_is_refused_when_signatures_are_required(
        server: ServerFactory, sign: Sign) -> None:
    signed = await sign(document_bundle(), who="Practitioner/not-in-this-bundle")
    async with server() as client:
        refused = await client.post("/Bundle", json=signed, headers=FHIR_JSON)
    async with server(require_signatures=False) as client:
        accepted = await client.post("/Bundle", json=signed, headers=FHIR_JSON)
    assert refused.status_code == 422
    assert refused.json()["issue"][0]["expression"] == ["Bundle.signature.who"]
    assert accepted.status_code == 201, accepted.text


async def test_without_trust_store_an_intact_signature_is_accepted_unless_required(
        server: ServerFactory, sign: Sign) -> None:
    signed = await sign(document_bundle())
    async with server(trust_dir=None, require_signatures=False) as client:
        accepted = await client.post("/Bundle", json=signed, headers=FHIR_JSON)
        [provenance] = await provenances(client)
    async with server(trust_dir=None, require_signatures=True) as client:
        refused = await client.post("/Bundle", json=signed, headers=FHIR_JSON)
    assert accepted.status_code == 201, accepted.text
    extension = provenance["signature"][0]["extension"][0]["extension"]
    assert {"url": "trusted", "valueBoolean": False} in extension
    assert refused.status_code == 422
    assert "untrusted-chain" in diagnostics(refused)


async def test_without_trust_store_a_tampered_signature_is_still_refused(server: ServerFactory,
                                                                        sign: Sign) -> None:
    signed = await sign(document_bundle())
    signed["timestamp"] = "2025-05-02T10:05:00+05:00"
    async with server(trust_dir=None, require_signatures=False) as client:
        response = await client.post("/Bundle", json=signed, headers=FHIR_JSON)
    assert response.status_code == 422
    assert "digest-mismatch" in diagnostics(response)


async def test_signatures_hold_when_write_validation_is_off(server: ServerFactory, sign: Sign) -> None:
    signed = await sign(document_bundle())
    tampered = copy.deepcopy(signed)
    tampered["entry"][4]["resource"]["valueQuantity"]["value"] = 40.1
    async with server(validate_on_write=False) as client:
        ok = await client.post("/Bundle", json=signed, headers=FHIR_JSON)
        bad = await client.post("/Bundle", json=tampered, headers=FHIR_JSON)
        unsigned = await client.post("/Bundle", json=document_bundle(), headers=FHIR_JSON)
        stored = await provenances(client)
    assert ok.status_code == 201, ok.text
    assert (bad.status_code, unsigned.status_code) == (422, 422)
    assert "digest-mismatch" in diagnostics(bad)
    assert len(stored) == 1


async def test_update_of_a_signed_document_records_a_provenance_per_version(server: ServerFactory,
                                                                           sign: Sign) -> None:
    signed = await sign(document_bundle())
    async with server() as client:
        created = (await client.post("/Bundle", json=signed, headers=FHIR_JSON)).json()
        updated = await client.put(f"/Bundle/{created['id']}", json={**signed, "id": created["id"]},
                                   headers=FHIR_JSON)
        assert updated.status_code == 200, updated.text
        targets = sorted(p["target"][0]["reference"] for p in await provenances(client))
    assert targets == [f"Bundle/{created['id']}/_history/1", f"Bundle/{created['id']}/_history/2"]


async def test_signed_document_inside_a_transaction_is_checked_and_recorded(server: ServerFactory,
                                                                           sign: Sign) -> None:
    # Absolute fullUrls and references: the transaction rewrites urn:uuid references even inside an
    # entry that is itself a Bundle (reported to the core), which would break the document.
    text = json.dumps(document_bundle())
    for i, kind in enumerate(("Composition", "Patient", "Practitioner", "Organization", "Observation")):
        text = text.replace(f"urn:uuid:8d0a3a36-0000-4000-8000-00000000000{i}", f"{MIS}/{kind}/{i}")
    signed = await sign(json.loads(text), who=f"{MIS}/Practitioner/2")
    tampered = copy.deepcopy(signed)
    tampered["timestamp"] = "2025-06-01T00:00:00Z"

    def transaction(document: dict[str, object]) -> dict[str, object]:
        return {"resourceType": "Bundle", "type": "transaction",
                "entry": [{"resource": document, "request": {"method": "POST", "url": "Bundle"}}]}

    async with server() as client:
        ok = await client.post("/", json=transaction(signed), headers=FHIR_JSON)
        bad = await client.post("/", json=transaction(tampered), headers=FHIR_JSON)
        stored = await provenances(client)
    assert ok.status_code == 200, ok.text
    assert bad.status_code == 422
    assert bad.json()["issue"][0]["expression"] == ["Bundle.entry[0].resource.signature"]
    assert len(stored) == 1


async def test_provenance_links_the_signer_on_this_server_only_when_the_iin_matches(server: ServerFactory,
                                                                                   sign: Sign) -> None:
    async with server() as client:
        ids = {}
        for iin in (DOCTOR_IIN, "123456789099"):
            practitioner = {"resourceType": "Practitioner", "identifier": [{"system": IIN_SYSTEM, "value": iin}]}
            ids[iin] = (await client.post("/Practitioner", json=practitioner, headers=FHIR_JSON)).json()["id"]
        for practitioner_id in ids.values():
            who = {"reference": f"Practitioner/{practitioner_id}",
                   "identifier": {"system": IIN_SYSTEM, "value": DOCTOR_IIN}}
            signed = await sign(document_bundle(), who=who)
            response = await client.post("/Bundle", json=signed, headers=FHIR_JSON)
            assert response.status_code == 201, response.text
        linked = sorted(str(p["agent"][0]["who"].get("reference")) for p in await provenances(client))
    assert linked == sorted([f"Practitioner/{ids[DOCTOR_IIN]}", "None"])
