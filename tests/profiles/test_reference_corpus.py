"""Our own corpus of small R4 resources, each valid or breaking one named core rule (cardinality,
invariant, binding, slicing, reference type, choice type, extension), judged as the R4 spec says.

The HL7 reference validator (Java) cannot run here (no network, no JVM download); every expected outcome
in corpus/cases.json was derived from the R4 specification text for the rule named in the case.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fhir_server.validation.profile import ProfileRegistry, validate_core_invariants, validate_profiles

CORPUS = Path(__file__).parent / "corpus"
CASES: list[dict[str, Any]] = json.loads((CORPUS / "cases.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def corpus_registry() -> ProfileRegistry:
    test_profiles = [json.loads(p.read_text(encoding="utf-8")) for p in CORPUS.glob("StructureDefinition-*.json")]
    return ProfileRegistry(test_profiles, include_kz=False)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_corpus_case_is_judged_as_the_spec_says(case: dict[str, Any], corpus_registry: ProfileRegistry) -> None:
    resource = case["resource"]
    issues = validate_profiles(resource, [case["profile"]], registry=corpus_registry)
    issues += validate_core_invariants(resource, corpus_registry)
    errors = list(dict.fromkeys(i for i in issues if i.is_error))
    if "error" not in case:
        assert errors == [], case["rule"]
        return
    expected = case["error"]
    assert errors, f"{case['name']} should break {case['rule']}"
    for issue in errors:
        assert (issue.code, issue.expression) == (expected["code"], expected["expression"]), issue
        assert expected["diagnostics"] in issue.diagnostics, issue


def test_corpus_covers_every_rule_family() -> None:
    rules = " ".join(c["rule"] for c in CASES)
    for family in ("cardinality", "invariant", "binding", "slic", "reference", "choice", "extension"):
        assert family in rules
