"""CodeSystem/$lookup: displays in Russian and Kazakh, designations, hierarchy properties."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from terminology import TerminologyError, TerminologyService

ParamReader = Callable[[dict[str, Any], str], Any]

KIND = "https://fhir.kzfhir.kz/CodeSystem/kz-diagnosis-kind"
ICD10 = "http://hl7.org/fhir/sid/icd-10"


def test_lookup_returns_english_display_and_both_designations(service: TerminologyService, param: ParamReader) -> None:
    out = service.lookup(KIND, "concomitant")
    assert param(out, "display") == "Concomitant diagnosis"
    assert param(out, "version") == "0.1.0"
    designations = [p["part"] for p in out["parameter"] if p["name"] == "designation"]
    assert [
        {"name": "language", "valueCode": "ru"},
        {"name": "value", "valueString": "Сопутствующий диагноз"},
    ] in designations
    assert [{"name": "language", "valueCode": "kk"}, {"name": "value", "valueString": "Ілеспе диагноз"}] in designations


@pytest.mark.parametrize(
    ("language", "expected"),
    [("ru", "Основной диагноз"), ("kk", "Негізгі диагноз"), ("ru-KZ", "Основной диагноз"), ("en", "Main diagnosis")],
)
def test_lookup_display_follows_the_requested_language(
    service: TerminologyService, language: str, expected: str, param: ParamReader
) -> None:
    assert param(service.lookup(KIND, "main", display_language=language), "display") == expected


def test_icd10_lookup_lists_parent_and_children(service: TerminologyService, param: ParamReader) -> None:
    out = service.lookup(ICD10, "I50", display_language="ru")
    assert param(out, "display") == "Сердечная недостаточность"
    props = {
        (p["part"][0]["valueCode"], p["part"][1].get("valueCode")) for p in out["parameter"] if p["name"] == "property"
    }
    assert ("parent", "I30-I52") in props
    assert {("child", "I50.0"), ("child", "I50.1"), ("child", "I50.9")} <= props


def test_icd10_chapter_is_not_selectable(service: TerminologyService) -> None:
    out = service.lookup(ICD10, "IX")
    props = [p["part"] for p in out["parameter"] if p["name"] == "property"]
    assert [{"name": "code", "valueCode": "notSelectable"}, {"name": "value", "valueBoolean": True}] in props
    assert [{"name": "code", "valueCode": "range"}, {"name": "value", "valueString": "I00-I99"}] in props


def test_core_code_system_lookup(service: TerminologyService, param: ParamReader) -> None:
    out = service.lookup("http://hl7.org/fhir/administrative-gender", "female")
    assert param(out, "display") == "Female"
    assert param(out, "version") == "4.0.1"


def test_unknown_code_and_unknown_system_are_not_found(service: TerminologyService) -> None:
    with pytest.raises(TerminologyError) as caught:
        service.lookup(KIND, "secondary")
    assert caught.value.code == "not-found"
    with pytest.raises(TerminologyError) as caught:
        service.lookup("http://snomed.info/sct", "38341003")
    assert caught.value.code == "not-found"


def test_lookup_of_a_missing_version_is_not_found(service: TerminologyService) -> None:
    with pytest.raises(TerminologyError):
        service.lookup(KIND, "main", version="9.9.9")
