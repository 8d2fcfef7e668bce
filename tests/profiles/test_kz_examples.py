"""Every KZ example: valid ones pass, each invalid one fails for its named rule and only that."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from fhir_server.validation.profile import KZ_PROFILES, ProfilePolicy, ProfileRegistry, validate_profiles
from profiles import examples_dir
from tests.profiles.conftest import invalid_index, load_json, valid_examples
from tests.profiles.kz_terminology import KzTerminology

NATIONAL = ProfilePolicy.national()


def _validate(resource: dict, registry: ProfileRegistry, terminology: KzTerminology) -> list:
    return validate_profiles(resource, NATIONAL.profiles_for(resource), registry=registry,
                             terminology=terminology, policy=NATIONAL)


@pytest.mark.req("MD-B")
@pytest.mark.req("MD-D")
@pytest.mark.parametrize("path", valid_examples(), ids=lambda p: p.name)
def test_valid_example_has_no_errors(path: Path, registry: ProfileRegistry, terminology: KzTerminology) -> None:
    issues = _validate(load_json(path), registry, terminology)
    assert [i for i in issues if i.is_error] == []


@pytest.mark.req("AC-07")
@pytest.mark.parametrize("name", sorted(invalid_index()), ids=str)
def test_invalid_example_fails_only_for_its_named_rule(
    name: str, registry: ProfileRegistry, terminology: KzTerminology
) -> None:
    expected = invalid_index()[name]
    errors = [i for i in _validate(load_json(examples_dir() / "invalid" / name), registry, terminology) if i.is_error]
    assert errors, f"{name} should break {expected['rule']}"
    for issue in errors:
        assert (issue.code, issue.expression) == (expected["code"], expected["expression"]), issue
        assert expected["diagnostics"] in issue.diagnostics


def test_every_profile_has_three_valid_and_five_invalid_examples() -> None:
    valid = Counter(load_json(p)["resourceType"] for p in valid_examples())
    invalid = Counter(load_json(examples_dir() / "invalid" / n)["resourceType"] for n in invalid_index())
    for resource_type in KZ_PROFILES:
        assert valid[resource_type] >= 3 and invalid[resource_type] >= 5, resource_type


def test_invalid_index_lists_exactly_the_invalid_files() -> None:
    files = {p.name for p in (examples_dir() / "invalid").glob("*.json")} - {"index.json"}
    assert files == set(invalid_index())


def test_examples_declare_their_profile() -> None:
    for path in valid_examples():
        resource = load_json(path)
        assert resource["meta"]["profile"] == [KZ_PROFILES[resource["resourceType"]]]


def test_binding_errors_need_the_terminology_and_stay_silent_without_it(registry: ProfileRegistry) -> None:
    resource = load_json(examples_dir() / "invalid" / "Encounter-channel-code.json")
    issues = validate_profiles(resource, NATIONAL.profiles_for(resource), registry=registry)
    assert not [i for i in issues if i.is_error]
