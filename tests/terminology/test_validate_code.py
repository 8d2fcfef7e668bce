"""$validate-code: true, false, and "cannot tell" for code systems the server does not hold."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from terminology import TerminologyError, TerminologyService

ParamReader = Callable[[dict[str, Any], str], Any]

KZ_VS = "https://fhir.kzfhir.kz/ValueSet/"
KZ_CS = "https://fhir.kzfhir.kz/CodeSystem/"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
SNOMED = "http://snomed.info/sct"
CONDITION_CODE = "http://hl7.org/fhir/ValueSet/condition-code"


def test_valid_code_in_value_set(service: TerminologyService, param: ParamReader) -> None:
    out = service.validate_code(KZ_VS + "kz-funding-source", system=KZ_CS + "kz-funding-source", code="osms")
    assert param(out, "result") is True
    assert param(out, "display") == "Compulsory social health insurance (OSMS)"


def test_code_outside_value_set_is_invalid(service: TerminologyService, param: ParamReader) -> None:
    out = service.validate_code(KZ_VS + "kz-funding-source", system=KZ_CS + "kz-funding-source", code="insurance")
    assert param(out, "result") is False
    assert "not in ValueSet" in param(out, "message")


def test_code_of_another_system_is_invalid(service: TerminologyService, param: ParamReader) -> None:
    out = service.validate_code(KZ_VS + "kz-funding-source", system=KZ_CS + "kz-diagnosis-kind", code="main")
    assert param(out, "result") is False


def test_russian_display_is_accepted_and_a_wrong_display_rejected(
    service: TerminologyService, param: ParamReader
) -> None:
    url, system = KZ_VS + "kz-diagnosis-type", KZ_CS + "kz-diagnosis-type"
    ok = service.validate_code(url, system=system, code="final", display="заключительный  диагноз")
    assert param(ok, "result") is True
    bad = service.validate_code(url, system=system, code="final", display="Preliminary diagnosis")
    assert param(bad, "result") is False
    assert param(bad, "display") == "Final diagnosis"


def test_code_of_unheld_system_gives_unknown(service: TerminologyService, param: ParamReader) -> None:
    out = service.validate_code(CONDITION_CODE, system=SNOMED, code="38341003")
    assert param(out, "result") is False
    assert param(out, "x-caused-by-unknown-system") == SNOMED
    assert "cannot validate" in param(out, "message")


def test_explicitly_listed_code_of_unheld_system_is_valid(service: TerminologyService, param: ParamReader) -> None:
    out = service.validate_code(CONDITION_CODE, system=SNOMED, code="160245001")
    assert param(out, "result") is True


def test_validate_against_code_system_only(service: TerminologyService, param: ParamReader) -> None:
    assert param(service.validate_code(system=ICD10, code="J45.9"), "result") is True
    unknown = service.validate_code(system="http://loinc.org", code="8480-6")
    assert param(unknown, "x-caused-by-unknown-system") == "http://loinc.org"


def test_plausible_icd10_code_missing_from_the_fragment_cannot_be_told(
    service: TerminologyService, param: ParamReader
) -> None:
    out = service.validate_code(KZ_VS + "icd-10", system=ICD10, code="K29.8")
    assert param(out, "result") is False
    assert "fragment" in param(out, "message")


def test_bare_code_without_system_uses_the_value_sets_only_system(
    service: TerminologyService, param: ParamReader
) -> None:
    out = service.validate_code("http://hl7.org/fhir/ValueSet/administrative-gender", system=None, code="other")
    assert param(out, "result") is True


def test_validate_code_needs_a_value_set_or_system(service: TerminologyService) -> None:
    with pytest.raises(TerminologyError) as caught:
        service.validate_code(system=None, code="x")
    assert caught.value.code == "invalid"
