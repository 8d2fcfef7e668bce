"""The walk's shortcuts (``Walk.fast``: from an object's keys to its rules instead of over every rule, primitives
judged by their count alone, a single object visited without building its item list) never change a judgement:
with them and without them every resource gets the very issues, in the same order and at the same expressions,
at every write level — on a mixed corpus (official examples, the HL7 validator's cases, the KZ examples, Synthea
resources) and on random mutations of it that put nulls, scalars, arrays, ``_name`` objects, foreign choice
types and unknown members where the definitions expect something else."""

from __future__ import annotations

import copy
import gzip
import json
from functools import cache
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_server.config import Settings
from fhir_server.validation.on_write import LEVELS, Level, ProfileValidation
from profiles import examples_dir
from terminology import default_service
from tests.data import r4_examples, synthea_bundles, validator_cases


@cache
def _validations() -> dict[tuple[bool, bool], ProfileValidation]:
    """(fast, national) -> a validation; both walks share one registry, so they judge the same definitions."""
    out: dict[tuple[bool, bool], ProfileValidation] = {}
    terminology = default_service()
    first: ProfileValidation | None = None
    for national in (False, True):
        for fast in (True, False):
            validation = ProfileValidation(Settings(require_kz_profiles=national), terminology=terminology,
                                           registry=first.registry if first is not None else None)
            validation.fast = fast
            first = first or validation
            out[(fast, national)] = validation
    return out


def _judged(resource: dict[str, Any], fast: bool, level: Level, national: bool = False) -> Any:
    validation = _validations()[(fast, national)]
    try:
        return validation.validate(resource, validation.policy.profiles_for(resource), level=level)
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:  # both paths alike, if at all
        return type(exc).__name__


@cache
def _corpus() -> tuple[dict[str, Any], ...]:
    out: list[dict[str, Any]] = []
    for name, data in r4_examples().items():
        if name.endswith(".json") and len(data) < 60_000:
            out.append(json.loads(data))
    for case in validator_cases():
        try:
            parsed = json.loads(case["input"])
        except ValueError:
            continue
        if isinstance(parsed, dict) and isinstance(parsed.get("resourceType"), str):
            out.append(parsed)
    for folder in ("valid", "invalid"):
        out.extend(json.loads(p.read_text(encoding="utf-8")) for p in sorted((examples_dir() / folder).glob("*.json")))
    for path in synthea_bundles()[:3]:
        out.extend(e["resource"] for e in orjson.loads(gzip.decompress(path.read_bytes()))["entry"])
    return tuple(out)


@pytest.mark.parametrize("level", LEVELS)
def test_the_shortcuts_give_the_same_issues_on_the_corpus(level: Level) -> None:
    differing = []
    for resource in _corpus():
        expected = _judged(resource, False, level)
        if _judged(resource, True, level) != expected:
            differing.append((resource.get("resourceType"), resource.get("id")))
    assert not differing, differing[:5]


def test_the_shortcuts_give_the_same_issues_against_the_kz_profiles() -> None:
    differing = [(r.get("resourceType"), r.get("id")) for r in _corpus()
                 if _judged(r, True, "standard", True) != _judged(r, False, "standard", True)]
    assert not differing, differing[:5]


# What a mutation puts in place of a member: wrong shapes and kinds for whatever the definition expects.
_ODD = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["", "x", "2020-01-01", "#p1", "Patient/1"]),
    st.just({}), st.just([]), st.just([None]), st.just({"id": "a"}), st.just({"extension": []}),
    st.just({"extension": [{"url": "http://example.org/x", "valueString": "v"}]}),
    st.just([{"system": "http://loinc.org", "code": "1-8"}]), st.just({"reference": "Medication/1"}),
    st.just(["a", None, "b"]), st.just([{"id": "x"}, None]),
)
_KEYS = st.sampled_from(["valueFoo", "_valueString", "valueString", "_status", "extension", "modifierExtension",
                         "id", "text", "unknownThing", "_id", "effectiveBogus", "onsetFoo", "_code", "coding"])


def _paths(node: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every member (object key or array index) below ``node``."""
    out: list[tuple[Any, ...]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            out.append((*here, key))
            out.extend(_paths(value, (*here, key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.append((*here, i))
            out.extend(_paths(value, (*here, i)))
    return out


def _parent(resource: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        resource = resource[step]
    return resource


@st.composite
def _mutated(draw: st.DrawFn) -> dict[str, Any]:
    resource = copy.deepcopy(draw(st.sampled_from(_corpus())))
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(resource) if p != ("resourceType",)]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _parent(resource, path)
        action = draw(st.sampled_from(["replace", "delete", "wrap", "add"]))
        if action == "replace":
            parent[path[-1]] = copy.deepcopy(draw(_ODD))  # st.just gives one object every time
        elif action == "delete":
            del parent[path[-1]]
        elif action == "wrap":
            parent[path[-1]] = [parent[path[-1]]]
        else:
            target = parent[path[-1]] if isinstance(parent[path[-1]], dict) else parent
            if isinstance(target, dict):
                target[draw(_KEYS)] = copy.deepcopy(draw(_ODD))
    return resource


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(resource=_mutated(), level=st.sampled_from(LEVELS), national=st.booleans())
def test_the_shortcuts_give_the_same_issues_on_mutated_resources(resource: dict[str, Any], level: Level,
                                                                national: bool) -> None:
    assert _judged(resource, True, level, national) == _judged(resource, False, level, national)


def test_the_shapes_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Members may come in any order, so the visit lists kept per object shape are bounded per index and in all;
    beyond the bounds a shape's list is built each time, with the same judgement."""
    import itertools

    from fhir_server.validation.profile import ProfileRegistry, validate_profiles, walker
    from fhir_server.validation.profile.registry import CORE_PREFIX

    monkeypatch.setattr(walker, "_SHAPES", 3)
    monkeypatch.setattr(walker, "_SHAPES_IN_ALL", 5)
    registry = ProfileRegistry(include_kz=False)
    members = {"gender": "female", "birthDate": "1990-01-01", "active": True, "name": [{"family": "A"}]}
    url = CORE_PREFIX + "Patient"
    for order in itertools.permutations(members):
        patient = {"resourceType": "Patient", **{key: members[key] for key in order}, "telecom": [{"value": "1"}]}
        fast = validate_profiles(patient, [url], registry=registry)
        assert fast == validate_profiles(patient, [url], registry=registry, fast=False)
    assert registry.derived["shapes"] == 5
    root = registry.core("Patient")
    assert root is not None and len(walker.child_index(root.root).shapes) == 3
