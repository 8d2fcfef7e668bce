"""ConceptMap/$translate over the shipped Kazakhstan maps."""

from __future__ import annotations

import pytest

from terminology import TerminologyError, TerminologyService

KZ_CS = "https://fhir.kzfhir.kz/CodeSystem/"
KZ_CM = "https://fhir.kzfhir.kz/ConceptMap/"


def _matches(out: dict) -> list[tuple[str, str | None, str | None]]:
    found = []
    for p in out["parameter"]:
        if p["name"] == "match":
            parts = {part["name"]: part for part in p["part"]}
            coding = parts.get("concept", {}).get("valueCoding", {})
            found.append((parts["equivalence"]["valueCode"], coding.get("system"), coding.get("code")))
    return found


def test_preliminary_diagnosis_translates_to_provisional_verification_status(service: TerminologyService) -> None:
    out = service.translate(system=KZ_CS + "kz-diagnosis-type", code="preliminary")
    assert out["parameter"][0] == {"name": "result", "valueBoolean": True}
    assert _matches(out) == [
        ("equivalent", "http://terminology.hl7.org/CodeSystem/condition-ver-status", "provisional")
    ]


def test_main_diagnosis_maps_inexactly_to_billing_role(service: TerminologyService) -> None:
    out = service.translate(
        url=KZ_CM + "kz-diagnosis-kind-to-diagnosis-role", system=KZ_CS + "kz-diagnosis-kind", code="main"
    )
    assert _matches(out) == [("inexact", "http://terminology.hl7.org/CodeSystem/diagnosis-role", "billing")]


def test_complication_is_unmatched(service: TerminologyService) -> None:
    out = service.translate(system=KZ_CS + "kz-diagnosis-kind", code="complication")
    assert out["parameter"][0]["valueBoolean"] is False
    assert _matches(out) == [("unmatched", None, None)]


@pytest.mark.req("TM-19")
def test_funding_source_translates_to_payer_types(service: TerminologyService) -> None:
    osms = service.translate(system=KZ_CS + "kz-funding-source", code="osms")
    assert _matches(osms) == [("equivalent", "http://terminology.hl7.org/CodeSystem/v3-ActCode", "MANDPOL")]
    paid = service.translate(system=KZ_CS + "kz-funding-source", code="paid")
    assert _matches(paid) == [("equivalent", "http://terminology.hl7.org/CodeSystem/coverage-selfpay", "pay")]


def test_target_value_set_selects_one_map(service: TerminologyService) -> None:
    out = service.translate(
        system=KZ_CS + "kz-disease-character", code="chronic-new",
        target="http://hl7.org/fhir/ValueSet/condition-clinical",
    )  # fmt: skip
    assert _matches(out) == [("wider", "http://terminology.hl7.org/CodeSystem/condition-clinical", "active")]
    snomed = service.translate(
        system=KZ_CS + "kz-disease-character", code="acute", target_system="http://snomed.info/sct"
    )
    assert _matches(snomed) == [("equivalent", "http://snomed.info/sct", "373933003")]


def test_unknown_concept_map_is_not_found(service: TerminologyService) -> None:
    with pytest.raises(TerminologyError) as caught:
        service.translate(url=KZ_CM + "nope", system="x", code="y")
    assert caught.value.code == "not-found"
