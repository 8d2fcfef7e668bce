"""The walk's memo (``Walk.memo``, used by the ``$import`` workers) never changes a judgement: every resource
of a mixed corpus — official examples, the HL7 validator's cases, Synthea resources, hand-made variants that
put one value where it is valid and where it is not — gets the very issues, in the same order and at the same
expressions, with the memo warm as without it, at every write level."""

from __future__ import annotations

import gzip
import json
from typing import Any

import orjson
import pytest

from fhir_server.config import Settings
from fhir_server.validation.on_write import LEVELS, Level, ProfileValidation
from fhir_server.validation.profile.walker import memo_key
from terminology import default_service
from tests.data import r4_examples, synthea_bundles, validator_cases

CODE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}
WRONG = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "nonsense"}]}


def _variants() -> list[dict[str, Any]]:
    """One CodeableConcept where a required binding accepts it and where it does not; the same Quantity with
    and without a decimal's trailing zero; a subtree with a local reference (never remembered)."""
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
    return [
        {**obs, "category": [CODE], "valueCodeableConcept": CODE},
        {**obs, "category": [WRONG], "valueCodeableConcept": WRONG},
        {"resourceType": "Condition", "subject": {"reference": "Patient/1"}, "clinicalStatus": CODE},
        {**obs, "valueQuantity": {"value": 1.5, "unit": "kg"}},
        {**obs, "valueQuantity": {"value": 1.5, "unit": "kg", "comparator": "<"}},
        {**obs, "valueQuantity": {"value": 1.5, "unit": "kg"}, "code": {"coding": [{"system": "http://loinc.org",
                                                                                     "code": "8867-4"}]}},
        {"resourceType": "Patient", "identifier": [{"assigner": {"reference": "#org"}, "value": "1"}]},
        {"resourceType": "Patient", "contained": [{"resourceType": "Organization", "id": "org", "name": "O"}],
         "identifier": [{"assigner": {"reference": "#org"}, "value": "1"}]},
    ]


def _corpus() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, data in list(r4_examples().items())[:120]:
        if name.endswith(".json") and len(data) < 50_000:
            out.append(json.loads(data))
    for case in validator_cases():
        try:
            parsed = json.loads(case["input"])
        except ValueError:
            continue
        if isinstance(parsed, dict) and isinstance(parsed.get("resourceType"), str):
            out.append(parsed)
    for path in synthea_bundles()[:2]:
        out.extend(e["resource"] for e in orjson.loads(gzip.decompress(path.read_bytes()))["entry"])
    return out + _variants()


@pytest.mark.parametrize("level", LEVELS)
def test_the_memo_gives_the_same_issues(level: Level) -> None:
    plain = ProfileValidation(Settings(), terminology=default_service())
    remembering = ProfileValidation(Settings(), terminology=default_service())
    remembering.memo = {}
    corpus = _corpus()
    differing = []
    for round_ in range(2):  # the second round meets every subtree again, warm
        for resource in corpus:
            profiles = plain.policy.profiles_for(resource)
            expected = plain.validate(resource, profiles, level=level)
            got = remembering.validate(resource, profiles, level=level)
            if got != expected:
                differing.append((round_, resource.get("resourceType"), resource.get("id"), expected, got))
    assert not differing, differing[:2]
    assert remembering.memo  # it was used


def test_memo_keys_tell_json_types_and_decimal_text_apart() -> None:
    from fhir_server import jsonio

    assert memo_key(jsonio.loads(b'{"v": 1.50}')) != memo_key(jsonio.loads(b'{"v": 1.5}'))
    assert memo_key({"v": True}) != memo_key({"v": 1})
    assert memo_key({"a": 1, "b": 2}) != memo_key({"b": 2, "a": 1})  # member order can order issues
    assert memo_key({"v": [1]}) != memo_key({"v": (list, 1)})
