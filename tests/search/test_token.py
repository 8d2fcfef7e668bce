"""Token search: system|code forms, :text, :not, :in, :not-in, :above, :below, :of-type, :missing
(FHIR R4 search §3.1.1.4.5). Expected sets are computed from the fixture data in plain Python."""

from __future__ import annotations

from typing import Any

import pytest

from tests.search.conftest import of_type
from tests.search.oracle import codings, fold, ids, token_matches
from tests.search.sqlite_db import IndexedDb

LOINC = "http://loinc.org"
KZ_DX = "http://example.org/fhir/CodeSystem/kz-dx"


@pytest.mark.parametrize("value", ["29463-7", f"{LOINC}|29463-7", f"{LOINC}|", "|29463-7", f"{KZ_DX}|A1a"])
def test_token_code_forms_match_codings(db: IndexedDb, clinic: list[dict[str, Any]], value: str) -> None:
    observations = of_type(clinic, "Observation")
    expected = ids(observations, lambda o: token_matches(codings(o["code"]), value))
    assert db.ids("Observation", [("code", value)]) == expected


def test_token_or_values_and_repeated_parameters_and(db: IndexedDb, clinic: list[dict[str, Any]]) -> None:
    observations = of_type(clinic, "Observation")
    either = ids(observations, lambda o: {c for _, c in codings(o["code"])} & {"8302-2", "8867-4"})
    assert db.ids("Observation", [("code", "8302-2,8867-4")]) == either
    both = ids(observations, lambda o: o["status"] == "final" and "8302-2" in {c for _, c in codings(o["code"])})
    assert db.ids("Observation", [("code", "8302-2"), ("status", "final")]) == both


def test_code_element_gets_its_binding_system(db: IndexedDb, clinic: list[dict[str, Any]]) -> None:
    patients = of_type(clinic, "Patient")
    expected = ids(patients, lambda p: p.get("gender") == "male")
    assert db.ids("Patient", [("gender", "http://hl7.org/fhir/administrative-gender|male")]) == expected
    assert db.ids("Patient", [("gender", "male")]) == expected


def test_identifier_token_finds_patient_by_iin(db: IndexedDb) -> None:
    assert db.ids("Patient", [("identifier", "https://fhir.kzfhir.kz/sid/iin|850315300019")]) == {"p1"}
    assert db.ids("Patient", [("identifier", "850315300019")]) == {"p1"}
    assert db.ids("Patient", [("identifier", "http://hospital.example.org/mrn|850315300019")]) == set()


def test_text_modifier_matches_display_and_text_words(db: IndexedDb, clinic: list[dict[str, Any]]) -> None:
    def has_word(o: dict[str, Any], word: str) -> bool:
        texts = [o["code"].get("text", "")] + [c.get("display", "") for c in o["code"].get("coding", [])]
        return any(w.startswith(fold(word)) for t in texts for w in fold(t).split())

    observations = of_type(clinic, "Observation")
    for word in ("body", "WEIGHT", "screening", "гипертензия"):
        assert db.ids("Observation", [("code:text", word)]) == ids(observations, lambda o, w=word: has_word(o, w))


def test_not_modifier_includes_resources_without_the_element(db: IndexedDb, clinic: list[dict[str, Any]]) -> None:
    patients = of_type(clinic, "Patient")
    assert db.ids("Patient", [("gender:not", "male")]) == ids(patients, lambda p: p.get("gender") != "male")


def test_in_and_not_in_use_a_stored_value_set(db: IndexedDb, clinic: list[dict[str, Any]]) -> None:
    vitals = {(LOINC, "8302-2"), (LOINC, "8867-4")}
    observations = of_type(clinic, "Observation")
    inside = ids(observations, lambda o: bool(set(codings(o["code"])) & vitals))
    vs = "http://example.org/fhir/ValueSet/vitals"
    assert db.ids("Observation", [("code:in", vs)]) == inside
    assert db.ids("Observation", [("code:not-in", vs)]) == {o["id"] for o in observations} - inside


def test_in_uses_a_core_value_set(db: IndexedDb, clinic: list[dict[str, Any]]) -> None:
    observations = of_type(clinic, "Observation")
    vs = "http://hl7.org/fhir/ValueSet/observation-status"
    assert db.ids("Observation", [("status:in", vs)]) == {o["id"] for o in observations}


def test_below_and_above_follow_the_code_system_hierarchy(db: IndexedDb) -> None:
    # kz-dx: A > A1 > A1a, A > A2, B (fixtures/clinic.json CodeSystem cs-kz-dx)
    assert db.ids("Observation", [("code:below", f"{KZ_DX}|A")]) == {"o9", "o10"}
    assert db.ids("Observation", [("code:below", f"{KZ_DX}|A1a")]) == {"o9"}
    assert db.ids("Observation", [("code:above", f"{KZ_DX}|A1a")]) == {"o9", "o10"}
    assert db.ids("Observation", [("code:above", f"{KZ_DX}|B")]) == {"o11"}


def test_of_type_matches_identifier_type_and_value(db: IndexedDb) -> None:
    v2 = "http://terminology.hl7.org/CodeSystem/v2-0203"
    assert db.ids("Patient", [("identifier:of-type", f"{v2}|NI|850315300019")]) == {"p1"}
    assert db.ids("Patient", [("identifier:of-type", f"{v2}|MR|850315300019")]) == set()
    assert db.ids("Patient", [("identifier:of-type", f"{v2}|MR|12345")]) == {"p8"}


def test_missing_modifier_on_token(db: IndexedDb, clinic: list[dict[str, Any]]) -> None:
    patients = of_type(clinic, "Patient")
    assert db.ids("Patient", [("gender:missing", "true")]) == ids(patients, lambda p: "gender" not in p)
    assert db.ids("Patient", [("gender:missing", "false")]) == ids(patients, lambda p: "gender" in p)


def test_boolean_expression_parameter_deceased(db: IndexedDb, clinic: list[dict[str, Any]]) -> None:
    # Patient-deceased is `deceased.exists() and deceased != false`: a boolean computed per resource.
    patients = of_type(clinic, "Patient")
    dead = ids(patients, lambda p: "deceasedDateTime" in p or p.get("deceasedBoolean") is True)
    assert db.ids("Patient", [("deceased", "true")]) == dead
    assert db.ids("Patient", [("deceased", "false")]) == {p["id"] for p in patients} - dead


def test_contact_point_token_uses_the_where_filter(db: IndexedDb) -> None:
    assert db.ids("Patient", [("phone", "+77011234567")]) == {"p1"}
    assert db.ids("Patient", [("email", "+77011234567")]) == set()
    assert db.ids("Patient", [("email", "erlan@example.kz")]) == {"p1"}


def test_meta_tag_security_parameters(db: IndexedDb) -> None:
    assert db.ids("Patient", [("_tag", "http://example.org/tags|vip")]) == {"p1"}
    assert db.ids("Patient", [("_security", "R")]) == {"p1"}
    assert db.ids(None, [("_tag", "vip")]) == {"p1"}


def test_id_parameter_and_its_not_modifier(db: IndexedDb, clinic: list[dict[str, Any]]) -> None:
    assert db.ids("Patient", [("_id", "p1,p3,nope")]) == {"p1", "p3"}
    patients = {p["id"] for p in of_type(clinic, "Patient")}
    assert db.ids("Patient", [("_id:not", "p1")]) == patients - {"p1"}
