"""ValueSet/$expand over the Kazakhstan sets, ICD-10 and R4 core sets: paging, filter, display language."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from terminology import TerminologyError, TerminologyService

KZ = "https://fhir.kzfhir.kz/ValueSet/"
ICD10 = "http://hl7.org/fhir/sid/icd-10"


def _codes(expansion: dict) -> list[str]:
    return [c["code"] for c in expansion["expansion"].get("contains", [])]


@pytest.mark.req("TM-19")
def test_funding_source_expands_to_all_five_codes(service: TerminologyService) -> None:
    out = service.expand(KZ + "kz-funding-source")
    assert out["expansion"]["total"] == 5
    assert _codes(out) == ["gobmp", "osms", "paid", "vhi", "other"]


def test_remote_service_form_expands_with_kazakh_displays(service: TerminologyService) -> None:
    out = service.expand(KZ + "kz-remote-service-form", display_language="kk")
    displays = {c["code"]: c["display"] for c in out["expansion"]["contains"]}
    assert displays["remote-monitoring"] == "Денсаулық жағдайын қашықтықтан бақылау"
    assert {"language": "ru", "value": "Дистанционный консилиум"} in out["expansion"]["contains"][1]["designation"]


def test_paging_returns_the_requested_window_and_the_full_total(service: TerminologyService) -> None:
    out = service.expand(KZ + "kz-telecom-channel", offset=1, count=2)
    assert out["expansion"]["total"] == 4
    assert out["expansion"]["offset"] == 1
    assert _codes(out) == ["audio", "text"]


def test_count_zero_returns_only_the_total(service: TerminologyService) -> None:
    out = service.expand(KZ + "kz-telecom-channel", count=0)
    assert out["expansion"]["total"] == 4 and "contains" not in out["expansion"]


def test_filter_matches_russian_designations_case_insensitively(service: TerminologyService) -> None:
    out = service.expand(KZ + "kz-disease-character", filter="ХРОНИЧЕСКОЕ впервые")
    assert _codes(out) == ["chronic-new"]


def test_filter_words_match_in_any_order_and_as_word_prefixes(service: TerminologyService) -> None:
    out = service.expand(KZ + "icd-10", filter="диабет инсулиннезав без осложн", display_language="ru")
    assert _codes(out) == ["E11.9"]
    assert out["expansion"]["contains"][0]["display"] == "Инсулиннезависимый сахарный диабет без осложнений"


def test_filter_matches_code_prefixes(service: TerminologyService) -> None:
    out = service.expand(KZ + "icd-10", filter="U07")
    assert set(_codes(out)) == {"U07", "U07.1", "U07.2"}


def test_core_administrative_gender_expands(service: TerminologyService) -> None:
    out = service.expand("http://hl7.org/fhir/ValueSet/administrative-gender")
    assert _codes(out) == ["male", "female", "other", "unknown"]


def _filtered(service: TerminologyService, *filters: dict[str, str]) -> list[str]:
    inline = {"resourceType": "ValueSet", "compose": {"include": [{"system": ICD10, "filter": list(filters)}]}}
    return _codes(service.expand(valueset=inline))


def test_hierarchy_filters_on_icd10(service: TerminologyService) -> None:
    assert _filtered(service, {"property": "concept", "op": "descendent-of", "value": "I50"}) == [
        "I50.0",
        "I50.1",
        "I50.9",
    ]
    assert _filtered(service, {"property": "concept", "op": "generalizes", "value": "I50.9"}) == [
        "IX", "I30-I52", "I50", "I50.9"
    ]  # fmt: skip
    not_circulatory = _filtered(service, {"property": "concept", "op": "is-not-a", "value": "IX"})
    assert "I10" not in not_circulatory and "J45" in not_circulatory


def test_property_filters_on_icd10(service: TerminologyService) -> None:
    chapters = _filtered(service, {"property": "kind", "op": "=", "value": "chapter"})
    assert len(chapters) == 22 and chapters[0] == "I" and chapters[-1] == "XXII"
    assert _filtered(
        service,
        {"property": "code", "op": "regex", "value": r"J4[45]\.\d"},
        {"property": "concept", "op": "is-a", "value": "X"},
    ) == ["J44.0", "J44.1", "J44.8", "J44.9", "J45.0", "J45.1", "J45.8", "J45.9"]
    assert _filtered(service, {"property": "parent", "op": "in", "value": "I50,U07"}) == [
        "I50.0", "I50.1", "I50.9", "U07.1", "U07.2"
    ]  # fmt: skip


def test_unsupported_filter_operator_is_reported(service: TerminologyService) -> None:
    with pytest.raises(TerminologyError) as caught:
        _filtered(service, {"property": "kind", "op": "is-a", "value": "chapter"})
    assert caught.value.code == "not-supported"


@pytest.mark.req("TM-22")
def test_icd10_is_a_filter_on_a_block_includes_its_categories_and_subcategories(service: TerminologyService) -> None:
    codes = _codes(service.expand(KZ + "icd-10-remote-monitoring"))
    assert {"I10", "I11.0", "I15.9", "E11.9", "J45.0", "I50.9"} <= set(codes)
    assert "J18" not in codes and "N39.0" not in codes


def test_abstract_blocks_are_flagged_in_the_expansion(service: TerminologyService) -> None:
    contains = service.expand(KZ + "icd-10-remote-monitoring")["expansion"]["contains"]
    flagged = {c["code"] for c in contains if c.get("abstract")}
    assert flagged == {"I10-I15", "I20-I25", "E10-E14"}


def test_value_set_over_an_unheld_code_system_cannot_be_expanded(service: TerminologyService) -> None:
    with pytest.raises(TerminologyError) as caught:
        service.expand("http://hl7.org/fhir/ValueSet/condition-code")
    assert caught.value.code == "not-supported"
    assert "http://snomed.info/sct" in caught.value.message


def test_unknown_value_set_is_not_found(service: TerminologyService) -> None:
    with pytest.raises(TerminologyError) as caught:
        service.expand(KZ + "no-such-set")
    assert caught.value.code == "not-found"
    assert caught.value.to_operation_outcome()["issue"][0]["code"] == "not-found"


def test_negative_offset_is_invalid(service: TerminologyService) -> None:
    with pytest.raises(TerminologyError) as caught:
        service.expand(KZ + "kz-telecom-channel", offset=-1)
    assert caught.value.code == "invalid"


def test_inline_value_set_with_exclude_and_import_is_expanded(service: TerminologyService) -> None:
    inline = {
        "resourceType": "ValueSet",
        "url": "urn:test:inline",
        "compose": {
            "include": [{"valueSet": [KZ + "kz-funding-source"]}],
            "exclude": [
                {"system": "https://fhir.kzfhir.kz/CodeSystem/kz-funding-source", "concept": [{"code": "other"}]}
            ],
        },
    }
    assert _codes(service.expand(valueset=inline)) == ["gobmp", "osms", "paid", "vhi"]


def test_value_set_importing_itself_is_invalid() -> None:
    svc = TerminologyService()
    svc.register(
        {"resourceType": "ValueSet", "url": "urn:test:loop", "compose": {"include": [{"valueSet": ["urn:test:loop"]}]}}
    )
    with pytest.raises(TerminologyError) as caught:
        svc.expand("urn:test:loop")
    assert caught.value.code == "invalid"


@settings(max_examples=60, deadline=None)
@given(
    url=st.sampled_from([KZ + "icd-10", KZ + "kz-service", "http://hl7.org/fhir/ValueSet/languages"]),
    page=st.integers(min_value=1, max_value=97),
    text=st.sampled_from([None, "болезн", "a", "diabetes", "rem"]),
)
def test_pages_concatenate_to_the_full_expansion(
    url: str, page: int, text: str | None, service: TerminologyService
) -> None:
    full = service.expand(url, filter=text)
    total = full["expansion"]["total"]
    pages: list[str] = []
    for offset in range(0, total, page):
        part = service.expand(url, filter=text, offset=offset, count=page)
        assert part["expansion"]["total"] == total
        pages.extend(_codes(part))
    assert pages == _codes(full)
