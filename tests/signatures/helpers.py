"""Helpers for the signature integration tests: a document Bundle, response readers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx

from fhir_server.security.refs import BIN_SYSTEM, IIN_SYSTEM

BASE = "http://kzfhir.test"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
DOCTOR_IIN = "123456789011"
ORG_BIN = "123456789021"
PATIENT_URN = "urn:uuid:8d0a3a36-0000-4000-8000-000000000001"
PRACTITIONER_URN = "urn:uuid:8d0a3a36-0000-4000-8000-000000000002"
ORGANIZATION_URN = "urn:uuid:8d0a3a36-0000-4000-8000-000000000003"

ServerFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
Sign = Callable[..., Awaitable[dict[str, Any]]]


def document_bundle(practitioner_iin: str = DOCTOR_IIN) -> dict[str, Any]:
    """A document Bundle (TM-10 medical record): Composition, Patient, the signing Practitioner, the
    Organization, an Observation."""
    patient = {"resourceType": "Patient", "id": "p1",
               "identifier": [{"system": IIN_SYSTEM, "value": "850315300019"}],
               "name": [{"family": "Ахметов", "given": ["Ерлан"]}], "birthDate": "1985-03-15"}
    practitioner = {"resourceType": "Practitioner", "id": "d1",
                    "identifier": [{"system": IIN_SYSTEM, "value": practitioner_iin}],
                    "name": [{"family": "Тестов", "given": ["Доктор"]}]}
    organization = {"resourceType": "Organization", "id": "o1", "name": "Тестовая поликлиника",
                    "identifier": [{"system": BIN_SYSTEM, "value": ORG_BIN}]}
    composition = {
        "resourceType": "Composition", "id": "c1", "status": "final",
        "type": {"coding": [{"system": "http://loinc.org", "code": "11488-4"}]},
        "subject": {"reference": PATIENT_URN},
        "date": "2025-05-01T10:00:00+05:00",
        "author": [{"reference": PRACTITIONER_URN}], "title": "Консультация",
        "section": [{"title": "Жалобы", "text": {
            "status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Нет</div>'}}],
    }
    observation = {"resourceType": "Observation", "id": "ob1", "status": "final",
                   "code": {"text": "temperature"},
                   "subject": {"reference": PATIENT_URN},
                   "valueQuantity": {"value": 36.6, "unit": "Cel"}}
    resources = (composition, patient, practitioner, organization, observation)
    return {
        "resourceType": "Bundle",
        "identifier": {"system": "urn:ietf:rfc:3986",
                       "value": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"},
        "type": "document", "timestamp": "2025-05-01T10:05:00+05:00",
        # fullUrls ...0 to ...4: Composition, PATIENT_URN, PRACTITIONER_URN, ORGANIZATION_URN, Observation
        "entry": [{"fullUrl": f"urn:uuid:8d0a3a36-0000-4000-8000-00000000000{i}", "resource": r}
                  for i, r in enumerate(resources)],
    }


def diagnostics(response: httpx.Response) -> str:
    return " | ".join(i.get("diagnostics", "") for i in response.json().get("issue", []))


def parts(parameter: dict[str, Any]) -> dict[str, Any]:
    """A Parameters part list as name -> value (repeated names -> list)."""
    out: dict[str, Any] = {}
    for part in parameter["part"]:
        value = next((v for k, v in part.items() if k.startswith("value")), part.get("part"))
        if part["name"] in ("finding", "note"):
            out.setdefault(part["name"], []).append(value)
        else:
            out[part["name"]] = value
    return out


async def provenances(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Every stored Provenance (through type history: the server may not have type search yet)."""
    response = await client.get("/Provenance/_history", params={"_count": "100"})
    assert response.status_code == 200, response.text
    return [e["resource"] for e in response.json().get("entry", []) if "resource" in e]
