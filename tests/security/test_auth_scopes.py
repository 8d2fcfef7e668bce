"""SMART v1/v2 scope parsing and checks."""

from __future__ import annotations

import pytest

from fhir_server.security.auth import Scope, levels_allowing, parse_scope, parse_scopes, scope_allows
from fhir_server.security.auth.scopes import levels_reaching


def test_parse_scope_reads_v2_resource_scope() -> None:
    assert parse_scope("patient/Observation.rs") == Scope("patient", "Observation", frozenset("rs"))


def test_parse_scope_reads_v2_wildcard_with_all_permissions() -> None:
    assert parse_scope("user/*.cruds") == Scope("user", "*", frozenset("cruds"))


@pytest.mark.parametrize(
    ("text", "permissions"),
    [("patient/Observation.read", "rs"), ("user/Patient.write", "cud"), ("system/*.*", "cruds")],
)
def test_parse_scope_maps_v1_spellings_to_v2_permissions(text: str, permissions: str) -> None:
    scope = parse_scope(text)
    assert scope is not None
    assert scope.permissions == frozenset(permissions)


@pytest.mark.parametrize(
    "text",
    [
        "openid",
        "fhirUser",
        "launch/patient",
        "offline_access",
        "patient/Observation.sr",
        "patient/Observation.x",
        "admin/Observation.rs",
        "patient/observation.rs",
        "patient/Observation.",
        "patient/Observation.rr",
    ],
)
def test_parse_scope_ignores_non_resource_and_malformed_scopes(text: str) -> None:
    assert parse_scope(text) is None


def test_a_granular_scope_reaches_its_type_but_covers_none_of_it_unconditionally() -> None:
    """The gate lets it through (levels_reaching); which resources it grants is the policy's per-resource
    check against the query (tests/security_pure/test_granular_scopes.py)."""
    scope = parse_scope("patient/Observation.rs?category=vital-signs")
    assert scope is not None and scope.granular and scope.query == "category=vital-signs"
    assert not scope_allows(["patient/Observation.rs?category=vital-signs"], "Observation", "r")
    assert scope.reaches("Observation", "r") and not scope.reaches("Observation", "c")
    assert levels_reaching(["patient/Observation.rs?category=vital-signs"], "Observation", "s") == {"patient"}


@pytest.mark.req("AC-12")
def test_scope_allows_only_listed_permissions_and_types() -> None:
    scopes = ["patient/Observation.rs", "user/Patient.r"]
    assert scope_allows(scopes, "Observation", "r")
    assert scope_allows(scopes, "Observation", "s")
    assert not scope_allows(scopes, "Observation", "c")
    assert not scope_allows(scopes, "Condition", "r")
    assert scope_allows(scopes, "Patient", "r")
    assert not scope_allows(scopes, "Patient", "s")


def test_wildcard_scope_covers_every_type() -> None:
    assert scope_allows(["system/*.rs"], "Encounter", "s")
    assert not scope_allows(["system/*.rs"], "Encounter", "d")


def test_levels_allowing_reports_which_levels_grant() -> None:
    scopes = ["patient/Observation.rs", "user/*.r"]
    assert levels_allowing(scopes, "Observation", "r") == {"patient", "user"}
    assert levels_allowing(scopes, "Observation", "s") == {"patient"}


def test_levels_allowing_rejects_unknown_permission_letter() -> None:
    with pytest.raises(ValueError, match="permission"):
        levels_allowing(["user/*.cruds"], "Observation", "x")


def test_parse_scopes_splits_space_separated_string() -> None:
    assert [s.resource_type for s in parse_scopes("openid patient/Observation.rs user/Patient.read")] == [
        "Observation",
        "Patient",
    ]
