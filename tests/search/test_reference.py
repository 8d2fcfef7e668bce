"""Reference search, chaining and reverse chaining (FHIR R4 search §3.1.1.4.10, §3.1.1.4.13-14)."""

from __future__ import annotations

from typing import Any

from tests.search.conftest import of_type
from tests.search.oracle import ids
from tests.search.sqlite_db import IndexedDb


def _ref(resource: dict[str, Any], key: str) -> str | None:
    value = resource.get(key)
    return value.get("reference") if isinstance(value, dict) else None


def test_reference_by_type_and_id_by_id_and_by_type_modifier(db: IndexedDb, clinic: list[dict[str, Any]]) -> None:
    observations = of_type(clinic, "Observation")
    expected = ids(observations, lambda o: _ref(o, "subject") == "Patient/p1")
    assert db.ids("Observation", [("subject", "Patient/p1")]) == expected
    assert db.ids("Observation", [("subject", "p1")]) == expected
    assert db.ids("Observation", [("subject:Patient", "p1")]) == expected
    assert db.ids("Observation", [("subject:Group", "p1")]) == set()


def test_patient_parameter_only_follows_patient_references(db: IndexedDb, clinic: list[dict[str, Any]]) -> None:
    # clinical-patient is subject.where(resolve() is Patient): a Group subject is not a patient, an
    # absolute URL of a Patient on another server is.
    observations = of_type(clinic, "Observation")
    patients = ids(observations, lambda o: "Patient/" in (_ref(o, "subject") or ""))
    assert db.ids("Observation", [("patient:missing", "false")]) == patients
    assert db.ids("Observation", [("subject", "Group/g1")]) == {"o10"}


def test_absolute_reference_to_another_server_matches_its_url(db: IndexedDb) -> None:
    assert db.ids("Observation", [("subject", "http://other.example.org/fhir/Patient/99")]) == {"o11"}
    assert db.ids("Observation", [("subject", "Patient/99")]) == set()


def test_reference_to_this_server_by_absolute_url(db: IndexedDb) -> None:
    found = db.ids("Observation", [("subject", "http://kzfhir.test/fhir/Patient/p2")], base_url="http://kzfhir.test/fhir")
    assert found == {"o3", "o8"}


def test_contained_reference_is_not_indexed_as_a_target(db: IndexedDb) -> None:
    assert db.ids("Observation", [("performer", "Practitioner/pr1")]) == set()
    assert db.ids("Observation", [("performer", "pr1")]) == set()


def test_identifier_modifier_matches_logical_references(db: IndexedDb) -> None:
    iin = "https://fhir.kzfhir.kz/sid/iin|900101412344"
    assert db.ids("Observation", [("performer:identifier", iin)]) == {"o12"}


def test_canonical_reference_with_and_without_version(db: IndexedDb) -> None:
    url = "http://example.org/fhir/Questionnaire/intake"
    assert db.ids("QuestionnaireResponse", [("questionnaire", url)]) == {"qr1"}
    assert db.ids("QuestionnaireResponse", [("questionnaire", url + "|1.0")]) == {"qr1"}
    assert db.ids("QuestionnaireResponse", [("questionnaire", url + "|2.0")]) == set()


def test_chained_parameter_through_a_typed_reference(db: IndexedDb, clinic: list[dict[str, Any]]) -> None:
    smiths = {p["id"] for p in of_type(clinic, "Patient") if any(n.get("family") == "Smith" for n in p.get("name", []))}
    observations = of_type(clinic, "Observation")
    expected = ids(observations, lambda o: (_ref(o, "subject") or "").removeprefix("Patient/") in smiths)
    assert db.ids("Observation", [("subject:Patient.family:exact", "Smith")]) == expected == {"o3", "o8"}
    assert db.ids("Observation", [("subject:Patient.identifier", "https://fhir.kzfhir.kz/sid/iin|850315300019")]) == {
        "o1", "o2", "o7"}


def test_multi_level_chain(db: IndexedDb) -> None:
    # Observation -> Encounter -> Practitioner (participant) named House.
    assert db.ids("Observation", [("encounter.practitioner.name", "house")]) == {"o3"}
    # Observation -> Patient -> Organization (managingOrganization) -> partOf org1.
    assert db.ids("Observation", [("patient.organization.partof", "Organization/org1")]) == {"o3", "o8"}


def test_untyped_chain_tries_every_target_type(db: IndexedDb) -> None:
    # subject may be Patient or Group; only Patient has `gender`.
    assert db.ids("Observation", [("subject.gender", "female")]) == {"o3", "o6", "o8", "o9"}


def test_reverse_chaining_has(db: IndexedDb, clinic: list[dict[str, Any]]) -> None:
    observations = of_type(clinic, "Observation")
    weighed = {(_ref(o, "subject") or "").removeprefix("Patient/") for o in observations
               if any(c["code"] == "29463-7" for c in o["code"]["coding"])}
    assert db.ids("Patient", [("_has:Observation:patient:code", "29463-7")]) == weighed


def test_nested_has(db: IndexedDb) -> None:
    # Practitioners that took part in an Encounter of a patient who has a weight Observation.
    found = db.ids("Practitioner", [("_has:Encounter:practitioner:_has:Observation:encounter:code", "29463-7")])
    assert found == {"dr1", "dr2"}


def test_has_combined_with_own_parameters(db: IndexedDb) -> None:
    assert db.ids("Patient", [("_has:Observation:patient:code", "29463-7"), ("gender", "female")]) == {"p2"}
