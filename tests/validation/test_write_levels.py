"""How writes judge a resource: ``KZFHIR_WRITE_VALIDATION`` strict / standard (the default) / lenient
(issue 14 §2, docs/validation.md "Strict and lenient"), over HTTP, each against ``$validate`` (always strict).

Standard refuses what breaks an invariant or a Bundle rule, as ``$validate`` does, but keeps two things the
field sends: extensions nobody defines (Synthea's US Core ones), vital signs that miss the core profile
their code implies, a signed document's RESTful fullUrls numbered apart from the ids, and the cardinality
inside known extensions of unprofiled resources.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.validation.on_write import write_level
from tests.conftest import BASE

FHIR_JSON = {"content-type": "application/fhir+json"}
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
LOINC = "http://loinc.org"
AUTHORITY = "https://fhir.kzfhir.kz/StructureDefinition/kz-representative-authority"
VITAL = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}


def _race() -> dict[str, Any]:
    """Synthea's Patient extension (US Core race, a complex extension), defined by no package here."""
    return {"url": US_CORE + "us-core-race", "extension": [
        {"url": "ombCategory", "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2106-3"}},
        {"url": "text", "valueString": "White"}]}


# name -> (resource, refused by strict, by standard, by lenient)
CASES: dict[str, tuple[dict[str, Any], bool, bool, bool]] = {
    "invariant pat-1 (a contact with no details)": (
        {"resourceType": "Patient", "contact": [{"gender": "male"}]}, True, True, False),
    "invariant obs-6 (dataAbsentReason beside a value)": (
        {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueString": "a",
         "dataAbsentReason": {"text": "unknown"}}, True, True, False),
    "Attachment.size differs from data": (
        {"resourceType": "Media", "status": "completed",
         "content": {"contentType": "text/plain", "data": "aGVsbG8=", "size": 100}}, True, True, False),
    "Bundle entry with a relative fullUrl": (
        {"resourceType": "Bundle", "type": "collection",
         "entry": [{"fullUrl": "Patient/p", "resource": {"resourceType": "Patient", "id": "p"}}]}, True, True, False),
    "Synthea's US Core extension": (
        {"resourceType": "Patient", "extension": [_race()]}, True, False, False),
    "a heart rate without the vital-signs slices (Synthea)": (
        {"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": LOINC, "code": "8867-4"}]},
         "subject": {"reference": "Patient/1"}, "effectiveDateTime": "2024-01-01T10:00:00+05:00",
         "valueQuantity": {"value": 72, "unit": "/min"}}, True, False, False),
    "a RESTful fullUrl numbered apart from the id": (
        {"resourceType": "Bundle", "type": "collection", "entry": [
            {"fullUrl": "http://mis.example.kz/fhir/Patient/1", "resource": {"resourceType": "Patient", "id": "p1"}}]},
        True, False, False),
    "a representative's authority recorded as verified only (the access policy's AC-09 form)": (
        {"resourceType": "RelatedPerson", "patient": {"reference": "Patient/p1"}, "extension": [
            {"url": AUTHORITY, "extension": [{"url": "verified", "valueBoolean": True}]}]}, True, False, False),
    "a sub-extension of a known extension with the wrong value type": (
        {"resourceType": "RelatedPerson", "patient": {"reference": "Patient/p1"}, "extension": [
            {"url": AUTHORITY, "extension": [{"url": "verified", "valueString": "yes"}]}]}, True, True, False),
    "an unknown modifierExtension": (
        {"resourceType": "Patient", "modifierExtension": [{"url": "https://vendor.kz/ext/flag", "valueBoolean": True}]},
        True, True, True),
    "a reference to a type the element does not allow": (
        {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
         "subject": {"reference": "Medication/1"}}, True, True, True),
    "a valid vital sign": (
        {"resourceType": "Observation", "status": "final", "category": [VITAL],
         "code": {"coding": [{"system": LOINC, "code": "8867-4"}]}, "subject": {"reference": "Patient/1"},
         "effectiveDateTime": "2024-01-01T10:00:00+05:00",
         "valueQuantity": {"value": 72, "unit": "beats/minute", "system": "http://unitsofmeasure.org",
                           "code": "/min"}}, False, False, False),
}
LEVELS = ("strict", "standard", "lenient")


@asynccontextmanager
async def _server(tmp_path: Path, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database=tmp_path / f"{len(list(tmp_path.iterdir()))}.sqlite", synchronous_full=False,
                              security_enabled=False, dev_key_path=tmp_path / "dev-jwks.json", **settings))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE, timeout=60) as client:
        yield client


@pytest.mark.parametrize("level", LEVELS)
async def test_each_level_refuses_on_write_exactly_its_rules(tmp_path: Path, level: str) -> None:
    column = LEVELS.index(level) + 1
    async with _server(tmp_path, write_validation=level) as client:
        for name, case in CASES.items():
            resource, refused = case[0], case[column]
            response = await client.post(f"/{resource['resourceType']}", json=resource, headers=FHIR_JSON)
            assert response.status_code == (422 if refused else 201), (level, name, response.text)
            if refused:  # the reason leads the outcome, with its path
                first = response.json()["issue"][0]
                assert first["severity"] == "error" and first.get("expression"), (name, first)


async def test_validate_judges_strictly_whatever_the_write_level(tmp_path: Path) -> None:
    async with _server(tmp_path, write_validation="lenient") as client:
        for name, (resource, strict, _, _) in CASES.items():
            response = await client.post(f"/{resource['resourceType']}/$validate", json=resource, headers=FHIR_JSON)
            errors = [i for i in response.json()["issue"] if i["severity"] in ("error", "fatal")]
            assert bool(errors) is strict, (name, errors)


async def test_by_default_writes_refuse_invariant_violations_and_keep_us_core_extensions(tmp_path: Path) -> None:
    async with _server(tmp_path) as client:
        broken = await client.post("/Patient", json=CASES["invariant pat-1 (a contact with no details)"][0],
                                   headers=FHIR_JSON)
        synthea = await client.post("/Patient", json={"resourceType": "Patient", "extension": [_race()]},
                                    headers=FHIR_JSON)
    assert broken.status_code == 422
    assert broken.json()["issue"][0]["expression"] == ["Patient.contact[0]"]
    assert "pat-1" in broken.json()["issue"][0]["diagnostics"]
    assert synthea.status_code == 201, synthea.text


def test_the_default_is_standard_and_the_old_setting_still_chooses_strict_or_lenient() -> None:
    assert write_level(Settings()) == "standard"
    assert write_level(Settings(write_validation="lenient")) == "lenient"
    assert write_level(Settings(validate_invariants_on_write=True)) == "strict"
    assert write_level(Settings(validate_invariants_on_write=False)) == "lenient"
    with pytest.raises(ValueError):
        Settings(write_validation="loose")
