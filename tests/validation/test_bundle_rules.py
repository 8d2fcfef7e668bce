"""Bundle rules beyond the invariants (validation/bundles.py; R4 §3.3, §3.3.1, §4.4)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_server.validation.bundles import bundle_issues
from fhir_server.validation.profile import ProfileRegistry


@pytest.fixture(scope="module")
def is_type() -> Any:
    return ProfileRegistry(include_kz=False).is_resource_type


def _issues(bundle: dict[str, Any], is_type: Any) -> list[tuple[str | None, str]]:
    return [(i.expression, i.diagnostics) for i in bundle_issues(bundle, is_type) if i.is_error]


def _document(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "document", "entry": list(entries)}


COMPOSITION = {"fullUrl": "http://x.kz/fhir/Composition/c", "resource": {
    "resourceType": "Composition", "id": "c", "subject": {"reference": "Patient/p"},
    "section": [{"entry": [{"reference": "Observation/o/_history/2"}]}]}}
PATIENT = {"fullUrl": "http://x.kz/fhir/Patient/p", "resource": {"resourceType": "Patient", "id": "p"}}
OBSERVATION = {"fullUrl": "http://x.kz/fhir/Observation/o", "resource": {
    "resourceType": "Observation", "id": "o", "meta": {"versionId": "2"}, "subject": {"reference": "Patient/p"}}}


def test_a_document_whose_references_resolve_inside_is_valid(is_type: Any) -> None:
    assert _issues(_document(COMPOSITION, PATIENT, OBSERVATION), is_type) == []


def test_a_document_reference_to_a_missing_entry_or_version_is_an_error(is_type: Any) -> None:
    assert [e for e, _ in _issues(_document(COMPOSITION, OBSERVATION), is_type)] == [
        "Bundle.entry[0].resource.subject", "Bundle.entry[1].resource.subject"]
    other_version = {**OBSERVATION, "resource": {**OBSERVATION["resource"], "meta": {"versionId": "1"}}}
    assert [e for e, _ in _issues(_document(COMPOSITION, PATIENT, other_version), is_type)] == [
        "Bundle.entry[0].resource.section[0].entry[0]"]


def test_a_document_starts_with_a_composition_and_a_message_with_a_message_header(is_type: Any) -> None:
    assert _issues(_document(PATIENT, COMPOSITION), is_type)[0][0] == "Bundle"
    message = {"resourceType": "Bundle", "type": "message", "entry": [PATIENT]}
    assert "MessageHeader" in _issues(message, is_type)[0][1]


def test_full_urls_are_absolute_and_name_their_resource(is_type: Any) -> None:
    relative = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "Patient/p", "resource": {"resourceType": "Patient", "id": "p"}}]}
    assert _issues(relative, is_type) == [("Bundle.entry[0].fullUrl", "The fullUrl must be an absolute URL "
                                           "(not 'Patient/p')")]
    mismatch = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "http://x.kz/fhir/Patient/q", "resource": {"resourceType": "Patient", "id": "p"}}]}
    assert [(i.severity, i.expression) for i in bundle_issues(mismatch, is_type)] == [
        ("error", "Bundle.entry[0].fullUrl")]  # strict mode only: a default write does not run Bundle rules
    fine = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:2f1e0b8c-8a4e-4b51-9d52-3f9d0c2a1b7e", "resource": {"resourceType": "Patient"}},
        {"fullUrl": "urn:oid:1.2.3", "resource": {"resourceType": "Patient"}}]}
    assert _issues(fine, is_type) == []


def test_the_same_resource_twice_is_a_duplicate_except_in_a_history(is_type: Any) -> None:
    twice = {"resourceType": "Bundle", "type": "collection", "entry": [PATIENT, PATIENT]}
    assert _issues(twice, is_type)[0][0] == "Bundle.entry[1]"
    assert _issues({**twice, "type": "history"}, is_type) == []


def test_searchset_entries_follow_their_search_mode(is_type: Any) -> None:
    bundle = {"resourceType": "Bundle", "type": "searchset",
              "link": [{"relation": "self", "url": "http://x.kz/fhir/Observation?code=x"}], "entry": [
                  {"resource": {"resourceType": "Patient"}, "search": {"mode": "outcome"}},
                  {"resource": {"resourceType": "Observation"}, "search": {"mode": "match"}},
                  {"resource": {"resourceType": "Patient", "id": "p"}, "search": {"mode": "match"}},
                  {"resource": {"resourceType": "Patient", "id": "q"}, "search": {"mode": "include"}}]}
    assert [e for e, _ in _issues(bundle, is_type)] == [
        "Bundle.entry[0].resource", "Bundle.entry[1].resource", "Bundle.entry[2].resource"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["p", "q", "r"]), min_size=1, max_size=6), st.sampled_from(["document", "collection"]))
def test_references_between_entries_resolve_exactly_when_the_target_is_inside(ids: list[str], kind: str) -> None:
    """A document's Composition pointing at Patient/<id> resolves iff an entry with that fullUrl exists."""
    registry_types = {"Composition", "Patient"}
    present = sorted(set(ids[1:]))
    composition = {"fullUrl": "http://x.kz/fhir/Composition/c", "resource": {
        "resourceType": "Composition", "id": "c", "subject": {"reference": f"Patient/{ids[0]}"}}}
    patients = [{"fullUrl": f"http://x.kz/fhir/Patient/{i}", "resource": {"resourceType": "Patient", "id": i}}
                for i in present]
    bundle = {"resourceType": "Bundle", "type": kind, "entry": [composition, *patients]}
    found = _issues(bundle, registry_types.__contains__)
    expected_error = kind == "document" and ids[0] not in present
    assert bool(found) is expected_error


def test_references_between_the_resources_of_a_parameters_resolve(is_type: Any) -> None:
    from fhir_server.validation.bundles import parameters_issues

    def member_match(beneficiary: str) -> dict[str, Any]:
        return {"resourceType": "Parameters", "parameter": [
            {"name": "MemberPatient", "resource": {"resourceType": "Patient", "id": "1"}},
            {"name": "Coverage", "resource": {"resourceType": "Coverage", "id": "c", "status": "active",
                                              "beneficiary": {"reference": beneficiary}}}]}

    assert parameters_issues(member_match("Patient/1"), is_type) == []
    assert [i.expression for i in parameters_issues(member_match("Patient/2"), is_type)] == [
        "Parameters.parameter[1].resource.beneficiary"]
