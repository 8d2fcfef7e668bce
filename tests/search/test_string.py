"""String search: starts-with by default, case- and accent-insensitive; :exact; :contains; :missing
(FHIR R4 search §3.1.1.4.8), including Kazakh and Russian names."""

from __future__ import annotations

from typing import Any

import pytest

from tests.search.conftest import of_type
from tests.search.oracle import ids, name_parts, string_matches
from tests.search.sqlite_db import IndexedDb


@pytest.mark.parametrize(
    "value", ["smith", "SMITH", "Smiths", "muller", "MÜLL", "ахм", "қасым", "әлия", "van der", "mr", "jack"])
def test_name_starts_with_any_part_ignoring_case_and_accents(
    db: IndexedDb, clinic: list[dict[str, Any]], value: str
) -> None:
    patients = of_type(clinic, "Patient")
    expected = ids(patients, lambda p: string_matches(name_parts(p), value))
    assert db.ids("Patient", [("name", value)]) == expected


@pytest.mark.parametrize("value", ["Smith", "smith", "Müller", "Muller"])
def test_exact_is_case_and_accent_sensitive(db: IndexedDb, clinic: list[dict[str, Any]], value: str) -> None:
    patients = of_type(clinic, "Patient")
    expected = ids(patients, lambda p: string_matches(name_parts(p), value, "exact"))
    assert db.ids("Patient", [("name:exact", value)]) == expected


@pytest.mark.parametrize("value", ["mith", "der b", "ЕРЛ", "xyz"])
def test_contains_matches_inside_values(db: IndexedDb, clinic: list[dict[str, Any]], value: str) -> None:
    patients = of_type(clinic, "Patient")
    expected = ids(patients, lambda p: string_matches(name_parts(p), value, "contains"))
    assert db.ids("Patient", [("name:contains", value)]) == expected


def test_family_and_given_are_separate_parameters(db: IndexedDb) -> None:
    assert db.ids("Patient", [("family", "smith")]) == {"p2", "p4"}
    assert db.ids("Patient", [("given", "smith")]) == set()
    assert db.ids("Patient", [("given", "jack")]) == {"p4"}


def test_address_parts_are_searchable(db: IndexedDb, clinic: list[dict[str, Any]]) -> None:
    patients = of_type(clinic, "Patient")
    cities = ids(patients, lambda p: string_matches([a.get("city", "") for a in p.get("address", [])], "mun"))
    assert db.ids("Patient", [("address-city", "mun")]) == cities == {"p3"}
    assert db.ids("Patient", [("address", "abay")]) == {"p1"}


def test_missing_modifier_on_string(db: IndexedDb, clinic: list[dict[str, Any]]) -> None:
    patients = of_type(clinic, "Patient")
    assert db.ids("Patient", [("name:missing", "true")]) == ids(patients, lambda p: not p.get("name"))


def test_string_like_wildcards_are_literal(db: IndexedDb) -> None:
    assert db.ids("Patient", [("name:contains", "%")]) == set()
    assert db.ids("Patient", [("name", "_")]) == set()
