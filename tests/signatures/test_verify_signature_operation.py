"""``Bundle/$verify-signature`` over HTTP, at type and instance level."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography import x509

from tests.signatures.helpers import (
    DOCTOR_IIN,
    FHIR_JSON,
    ServerFactory,
    Sign,
    document_bundle,
    parts,
)

pytestmark = [pytest.mark.req("AC-25"), pytest.mark.req("TM-10")]


def _signature_parameters(parameters: dict[str, Any]) -> list[dict[str, Any]]:
    assert parameters["resourceType"] == "Parameters"
    return [parts(p) for p in parameters["parameter"] if p["name"] == "signature"]


def _result(parameters: dict[str, Any]) -> bool:
    return bool(next(p["valueBoolean"] for p in parameters["parameter"] if p["name"] == "result"))


async def test_type_level_reports_every_detail_of_a_valid_signature(server: ServerFactory,
                                                                   sign: Sign) -> None:
    signed = await sign(document_bundle(practitioner_iin="123456789012"), signer="doctor-ec", fmt="jws")
    async with server() as client:
        response = await client.post("/Bundle/$verify-signature", json=signed, headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    assert _result(response.json()) is True
    [details] = _signature_parameters(response.json())
    assert details["path"] == "Bundle.signature"
    assert (details["ok"], details["intact"], details["valid"], details["trusted"], details["revoked"]) == (
        True, True, True, True, False)
    assert details["format"] == "jws"
    assert details["iin"] == details["expectedIin"] == "123456789012"
    assert "SERIALNUMBER=IIN123456789012" in details["signerSubject"]
    assert details["algorithm"]
    assert details["signingTime"].startswith(signed["signature"]["when"][:16])
    cert = x509.load_der_x509_certificate(base64.b64decode(details["certificate"]))
    assert "IIN123456789012" in cert.subject.rfc4514_string()
    assert "finding" not in details


async def test_type_level_accepts_parameters_and_reports_each_refusal_reason(server: ServerFactory,
                                                                            sign: Sign) -> None:
    signed = await sign(document_bundle(), signer="revoked")  # the Practitioner's IIN is the doctor's
    body = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": signed}]}
    async with server() as client:
        response = await client.post("/Bundle/$verify-signature", json=body, headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    assert _result(response.json()) is False
    [details] = _signature_parameters(response.json())
    reasons = {finding[0]["valueCode"] for finding in details["finding"]}
    assert reasons == {"certificate-revoked", "iin-mismatch"}
    assert (details["ok"], details["intact"], details["revoked"]) == (False, True, True)
    assert details["expectedIin"] == DOCTOR_IIN


async def test_type_level_reports_a_tampered_document(server: ServerFactory, sign: Sign) -> None:
    signed = await sign(document_bundle(), fmt="xml")
    signed["entry"][1]["resource"]["birthDate"] = "1986-03-15"
    async with server() as client:
        response = await client.post("/Bundle/$verify-signature", json=signed, headers=FHIR_JSON)
    [details] = _signature_parameters(response.json())
    assert details["intact"] is False
    assert "digest-mismatch" in {finding[0]["valueCode"] for finding in details["finding"]}


async def test_instance_level_verifies_the_stored_bundle(server: ServerFactory, sign: Sign) -> None:
    signed = await sign(document_bundle())
    async with server() as client:
        created = (await client.post("/Bundle", json=signed, headers=FHIR_JSON)).json()
        by_get = await client.get(f"/Bundle/{created['id']}/$verify-signature")
        by_post = await client.post(f"/Bundle/{created['id']}/$verify-signature", json={
            "resourceType": "Parameters"}, headers=FHIR_JSON)
    for response in (by_get, by_post):
        assert response.status_code == 200, response.text
        assert _result(response.json()) is True
        [details] = _signature_parameters(response.json())
        assert details["iin"] == DOCTOR_IIN


async def test_instance_level_reports_a_stored_unsigned_bundle_as_not_verified(server: ServerFactory) -> None:
    async with server(require_signatures=False) as client:
        created = (await client.post("/Bundle", json=document_bundle(), headers=FHIR_JSON)).json()
        response = await client.get(f"/Bundle/{created['id']}/$verify-signature")
    assert response.status_code == 200
    assert _result(response.json()) is False
    assert _signature_parameters(response.json()) == []


async def test_signed_documents_inside_a_collection_are_each_reported(server: ServerFactory,
                                                                     sign: Sign) -> None:
    good = await sign(document_bundle())
    bad = await sign(document_bundle(), signer="expired")
    collection = {"resourceType": "Bundle", "type": "collection",
                  "entry": [{"resource": good}, {"resource": bad}]}
    async with server() as client:
        response = await client.post("/Bundle/$verify-signature", json=collection, headers=FHIR_JSON)
    details = _signature_parameters(response.json())
    assert [d["path"] for d in details] == ["Bundle.entry[0].resource.signature",
                                            "Bundle.entry[1].resource.signature"]
    assert [d["ok"] for d in details] == [True, False]
    assert _result(response.json()) is False


async def test_unknown_bundle_is_404_and_a_missing_bundle_is_400(server: ServerFactory) -> None:
    async with server() as client:
        unknown = await client.get("/Bundle/no-such-bundle/$verify-signature")
        missing = await client.post("/Bundle/$verify-signature", json={"resourceType": "Parameters"},
                                    headers=FHIR_JSON)
        not_bundle = await client.post("/Patient/$verify-signature", json={"resourceType": "Patient"},
                                       headers=FHIR_JSON)
    assert unknown.status_code == 404
    assert missing.status_code == 400
    assert not_bundle.status_code == 404  # the operation is defined on Bundle only
