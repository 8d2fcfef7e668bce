"""Type and profile discriminators and open-at-end slicing (R4 §5.1.0.11), on test-only profiles."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fhir_server.validation.profile import KZ_PROFILES, ProfileRegistry, validate_profiles
from profiles import examples_dir, load_package
from tests.profiles.conftest import load_json

CORE = "http://hl7.org/fhir/StructureDefinition/"
DIV = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'}


def _sd(url: str, type_: str, *elements: dict[str, Any]) -> dict[str, Any]:
    return {"url": url, "type": type_, "kind": "resource", "baseDefinition": CORE + type_,
            "differential": {"element": list(elements)}}


@pytest.fixture(scope="module")
def slicing_registry() -> ProfileRegistry:
    return ProfileRegistry([
        _sd("urn:type-slice", "Observation",
            {"id": "Observation.value[x]", "slicing": {"discriminator": [{"type": "type", "path": "$this"}],
                                                       "rules": "closed"}},
            {"id": "Observation.value[x]:valueQuantity", "sliceName": "valueQuantity", "min": 1,
             "type": [{"code": "Quantity"}]}),
        _sd("urn:profile-slice", "Patient",
            {"id": "Patient.contained", "slicing": {"discriminator": [{"type": "profile", "path": "$this"}],
                                                    "rules": "open"}},
            {"id": "Patient.contained:org", "sliceName": "org", "min": 1,
             "type": [{"code": "Resource", "profile": [KZ_PROFILES["Organization"]]}]}),
        _sd("urn:open-at-end", "Patient",
            {"id": "Patient.identifier", "slicing": {"discriminator": [{"type": "value", "path": "system"}],
                                                     "rules": "openAtEnd"}},
            {"id": "Patient.identifier:a", "sliceName": "a"},
            {"id": "Patient.identifier:a.system", "fixedUri": "urn:a"}),
    ], include_kz=True)


def _errors(resource: dict[str, Any], url: str, registry: ProfileRegistry) -> list[str]:
    return [i.diagnostics for i in validate_profiles(resource, [url], registry=registry) if i.is_error]


def test_type_discriminator_matches_the_chosen_type(slicing_registry: ProfileRegistry) -> None:
    base = {"resourceType": "Observation", "text": DIV, "status": "final", "code": {"text": "x"}}
    quantity = {**base, "valueQuantity": {"value": 1}}
    assert _errors(quantity, "urn:type-slice", slicing_registry) == []
    text = {**base, "valueString": "1"}
    errors = _errors(text, "urn:type-slice", slicing_registry)
    assert any("Slice 'valueQuantity'" in e for e in errors) and any("closed" in e for e in errors)


def test_profile_discriminator_matches_only_conforming_resources(slicing_registry: ProfileRegistry) -> None:
    organization = load_json(examples_dir() / "valid" / "Organization-kz-organization-1.json")
    organization = {k: v for k, v in organization.items() if k not in ("meta", "text")} | {"id": "o"}
    patient = {"resourceType": "Patient", "text": DIV, "contained": [organization],
               "managingOrganization": {"reference": "#o"}}
    assert _errors(patient, "urn:profile-slice", slicing_registry) == []
    broken = copy.deepcopy(patient)
    broken["contained"][0].pop("name")
    errors = _errors(broken, "urn:profile-slice", slicing_registry)
    assert any("Slice 'org'" in e for e in errors)


def test_open_at_end_rejects_unmatched_items_before_sliced_ones(slicing_registry: ProfileRegistry) -> None:
    good = {"resourceType": "Patient", "text": DIV, "identifier": [{"system": "urn:a"}, {"system": "urn:z"}]}
    assert _errors(good, "urn:open-at-end", slicing_registry) == []
    bad = {**good, "identifier": list(reversed(good["identifier"]))}
    assert any("openAtEnd" in e for e in _errors(bad, "urn:open-at-end", slicing_registry))


def test_kz_package_loads_without_network_or_generation() -> None:
    assert all("snapshot" in r for r in load_package() if r["resourceType"] == "StructureDefinition")
