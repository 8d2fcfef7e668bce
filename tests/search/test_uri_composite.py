"""URI search (:above, :below) and composite search (FHIR R4 search §3.1.1.4.11, §3.1.1.4.9)."""

from __future__ import annotations

from tests.search.sqlite_db import IndexedDb

LOINC = "http://loinc.org"


def test_uri_exact_below_and_above(db: IndexedDb) -> None:
    assert db.ids("ValueSet", [("url", "http://example.org/fhir/ValueSet/vitals")]) == {"vs-vitals"}
    assert db.ids("ValueSet", [("url:below", "http://example.org/fhir")]) == {"vs-vitals"}
    assert db.ids("ValueSet", [("url:above", "http://example.org/fhir/ValueSet/vitals/extra")]) == {"vs-vitals"}
    assert db.ids("ValueSet", [("url:above", "http://example.org/other/ValueSet")]) == set()
    assert db.ids("Patient", [("_profile", "https://fhir.kzfhir.kz/StructureDefinition/kz-patient")]) == {"p1"}
    assert db.ids("Patient", [("_source", "http://mis.example.kz/damumed")]) == {"p1"}


def test_composite_pairs_components_of_the_same_element(db: IndexedDb) -> None:
    # o7: systolic 140 / diastolic 90; o8: systolic 90 / diastolic 140 (components swapped).
    systolic_high = db.ids("Observation", [("component-code-value-quantity", f"{LOINC}|8480-6$gt130")])
    assert systolic_high == {"o7"}
    assert db.ids("Observation", [("component-code-value-quantity", f"{LOINC}|8462-4$gt130")]) == {"o8"}
    assert db.ids("Observation", [("component-code-value-quantity", "8480-6$lt100,8462-4$lt100")]) == {"o7", "o8"}


def test_composite_over_the_resource_itself(db: IndexedDb) -> None:
    assert db.ids("Observation", [("code-value-quantity", f"{LOINC}|29463-7$ge100")]) == {"o2", "o4", "o5"}
    assert db.ids("Observation", [("code-value-concept", "A1a$http://snomed.info/sct|260385009")]) == {"o9"}
    assert db.ids("Observation", [("code-value-string", "A1$normal")]) == {"o10"}


def test_combo_composite_covers_code_and_components(db: IndexedDb) -> None:
    assert db.ids("Observation", [("combo-code-value-quantity", "8480-6$140")]) == {"o7"}
    assert db.ids("Observation", [("combo-code-value-quantity", "29463-7$100")]) == {"o2", "o3", "o4"}


def test_composite_missing_modifier(db: IndexedDb) -> None:
    with_components = db.ids("Observation", [("component-code-value-quantity:missing", "false")])
    assert with_components == {"o7", "o8"}
