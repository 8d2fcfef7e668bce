"""Number and quantity search: significant-figure ranges for eq/ne/ap, exact comparison for the other
prefixes, units by system|code or by code alone (FHIR R4 search §3.1.1.4.3 number, §3.1.1.4.9 quantity)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.search.conftest import of_type
from tests.search.oracle import ids, number_matches
from tests.search.sqlite_db import IndexedDb

UCUM = "http://unitsofmeasure.org"


def _value(o: dict[str, Any]) -> float | None:
    q = o.get("valueQuantity")
    return q["value"] if q else None


@pytest.mark.parametrize("query", ["100", "100.0", "1e2", "99.6", "eq100.00", "ne100", "gt100", "lt100", "ge100.4",
                                   "le99.6", "sa220", "eb72", "ap100", "ap176"])
def test_value_quantity_number_part(db: IndexedDb, clinic: list[dict[str, Any]], query: str) -> None:
    observations = of_type(clinic, "Observation")
    expected = ids(observations, lambda o: (v := _value(o)) is not None and number_matches(v, query))
    assert db.ids("Observation", [("value-quantity", query)]) == expected


def test_significant_figures_decide_the_equality_range(db: IndexedDb) -> None:
    # 100 -> [99.5, 100.5): 99.6, 100 and 100.4 match; 100.0 -> [99.95, 100.05): only 100 does.
    assert db.ids("Observation", [("value-quantity", "100")]) == {"o2", "o3", "o4"}
    assert db.ids("Observation", [("value-quantity", "100.0")]) == {"o2"}


def test_quantity_units_by_system_and_code_or_by_code_alone(db: IndexedDb, clinic: list[dict[str, Any]]) -> None:
    observations = of_type(clinic, "Observation")
    kg = ids(observations, lambda o: (o.get("valueQuantity") or {}).get("code") == "kg")
    assert db.ids("Observation", [("value-quantity", f"gt0|{UCUM}|kg")]) == kg
    assert db.ids("Observation", [("value-quantity", "gt0||kg")]) == kg
    assert db.ids("Observation", [("value-quantity", "gt0||lb")]) == {"o5"}  # the human unit also matches
    assert db.ids("Observation", [("value-quantity", "gt0|http://other|kg")]) == set()


def test_number_parameter_over_decimals_and_ranges(db: IndexedDb) -> None:
    assert db.ids("RiskAssessment", [("probability", "0.25")]) == {"ra1"}
    assert db.ids("RiskAssessment", [("probability", "gt0.5")]) == {"ra1"}  # the 0.4-0.6 range reaches above
    assert db.ids("RiskAssessment", [("probability", "gt0.7")]) == set()


def test_age_quantity_from_a_choice_element(db: IndexedDb) -> None:
    assert db.ids("Condition", [("onset-age", "45")]) == {"c2"}
    assert db.ids("Condition", [("onset-age", f"lt50|{UCUM}|a")]) == {"c2"}
