"""Invariants that fhirpathpy cannot evaluate are evaluated, not skipped (issue 14 §1): per-1 with mixed
precisions, rng-2 on Quantities, inv-1 on Parameters parts, tim-9 with repeating ``when``; and no R4 core
invariant of the official examples or the reference validator's cases is left "could not be evaluated"."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_server.jsonio import Decimal as JsonDecimal
from fhir_server.validation.profile import ProfileRegistry, validate_core_invariants
from fhir_server.validation.profile.comparisons import compare_datetimes, compare_quantities
from tests.data import r4_examples, validator_cases


@pytest.fixture(scope="module")
def registry() -> ProfileRegistry:
    return ProfileRegistry(include_kz=False)


def _keys(resource: dict[str, Any], registry: ProfileRegistry) -> set[str]:
    return {i.diagnostics.split(":", 1)[0] for i in validate_core_invariants(resource, registry) if i.is_error}


@pytest.mark.parametrize(("start", "end", "holds"), [
    ("2023-06-21", "2023-06-21T06:20:00Z", False),  # equal as far as both go: unknown (reference: per-1)
    ("2023-06-20", "2023-06-21T06:20:00Z", True),
    ("2023-06-22", "2023-06-21T06:20:00Z", False),
    ("2023-06-21T10:00:00+05:00", "2023-06-21T06:00:00Z", True),  # 05:00Z is before 06:00Z
    ("2023-06-21T12:00:00+05:00", "2023-06-21T06:00:00Z", False),
    ("2023", "2023-06", False),
    ("2023-06-21T06:20:00.5Z", "2023-06-21T06:20:00.50Z", True),
])
def test_per_1_follows_fhirpath_precision(start: str, end: str, holds: bool, registry: ProfileRegistry) -> None:
    encounter = {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"},
                 "period": {"start": start, "end": end}}
    assert ("per-1" not in _keys(encounter, registry)) is holds


@pytest.mark.parametrize(("low", "high", "holds"), [
    ({"value": 5}, {"value": 3}, False),
    ({"value": 3}, {"value": 5}, True),
    ({"value": 500, "system": "http://unitsofmeasure.org", "code": "mg"},
     {"value": 1, "system": "http://unitsofmeasure.org", "code": "g"}, True),
    ({"value": 2, "system": "http://unitsofmeasure.org", "code": "g"},
     {"value": 1500, "system": "http://unitsofmeasure.org", "code": "mg"}, False),
    ({"value": 6, "system": "http://unitsofmeasure.org", "code": "mo"},
     {"value": 1, "system": "http://unitsofmeasure.org", "code": "a"}, True),
    ({"value": 1, "system": "http://unitsofmeasure.org", "code": "g"},
     {"value": 2, "system": "http://unitsofmeasure.org", "code": "m"}, False),  # incomparable: not "true"
])
def test_rng_2_compares_quantities(low: dict[str, Any], high: dict[str, Any], holds: bool,
                                   registry: ProfileRegistry) -> None:
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                   "valueRange": {"low": low, "high": high}}
    assert ("rng-2" not in _keys(observation, registry)) is holds


def test_inv_1_reads_the_value_of_parts(registry: ProfileRegistry) -> None:
    lookup_output = {"resourceType": "Parameters", "parameter": [
        {"name": "designation", "part": [{"name": "value", "valueString": "x"}, {"name": "use", "valueCoding": {
            "code": "display"}}]},
        {"name": "resourced", "resource": {"resourceType": "Patient", "active": True}}]}
    assert "inv-1" not in _keys(lookup_output, registry)
    both = {"resourceType": "Parameters", "parameter": [
        {"name": "p", "part": [{"name": "q", "valueString": "x", "resource": {"resourceType": "Patient",
                                                                               "active": True}}]}]}
    assert "inv-1" in _keys(both, registry)


def test_tim_9_sees_every_when(registry: ProfileRegistry) -> None:
    def request(when: list[str]) -> dict[str, Any]:
        return {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                "medicationCodeableConcept": {"text": "x"}, "subject": {"reference": "Patient/1"},
                "dosageInstruction": [{"timing": {"repeat": {"when": when, "offset": 30}}}]}
    assert "tim-9" not in _keys(request(["ACM", "PCV"]), registry)
    assert "tim-9" in _keys(request(["ACM", "CM"]), registry)


@given(st.integers(-10**6, 10**6), st.integers(-10**6, 10**6), st.sampled_from(["", "k", "m", "u"]),
       st.sampled_from(["", "k", "m", "u"]))
def test_quantity_order_matches_the_exact_arithmetic(a: int, b: int, pa: str, pb: str) -> None:
    factor = {"": Decimal(1), "k": Decimal(1000), "m": Decimal("0.001"), "u": Decimal("0.000001")}
    left = {"value": JsonDecimal(str(Decimal(a) / 100)), "system": "http://unitsofmeasure.org", "code": pa + "g"}
    right = {"value": b, "system": "http://unitsofmeasure.org", "code": pb + "g"}
    expected = (Decimal(a) / 100 * factor[pa] > b * factor[pb]) - (Decimal(a) / 100 * factor[pa] < b * factor[pb])
    assert compare_quantities(left, right) == expected


@given(st.dates(), st.dates())
def test_date_order_matches_the_calendar(a: Any, b: Any) -> None:
    assert compare_datetimes(a.isoformat(), b.isoformat()) == (a > b) - (a < b)


def test_no_core_invariant_is_left_unevaluated(registry: ProfileRegistry) -> None:
    resources = [json.loads(raw) for raw in r4_examples().values()]
    for case in validator_cases():
        try:
            resources.append(json.loads(case["input"]))
        except ValueError:
            continue  # the cases of unparseable JSON
    skipped = [(r.get("resourceType"), r.get("id"), i.diagnostics) for r in resources if isinstance(r, dict)
               for i in validate_core_invariants(r, registry) if i.code == "processing"]
    assert skipped == []
