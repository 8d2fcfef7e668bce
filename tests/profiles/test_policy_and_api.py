"""Profile selection (meta.profile + mandatory profiles), national strict mode and relaxed IINs."""

from __future__ import annotations

import copy

import pytest

from fhir_server.validation.profile import KZ_PROFILES, ProfilePolicy, ProfileRegistry, validate_profiles
from profiles import examples_dir
from tests.profiles.conftest import load_json

GENERIC_PATIENT = {"resourceType": "Patient", "name": [{"family": "Doe"}]}


def test_default_policy_is_a_plain_r4_server() -> None:
    assert ProfilePolicy().profiles_for(GENERIC_PATIENT) == []


@pytest.mark.req("TM-04")
def test_national_mode_makes_the_kz_profile_mandatory(registry: ProfileRegistry) -> None:
    policy = ProfilePolicy.national()
    assert policy.profiles_for(GENERIC_PATIENT) == [KZ_PROFILES["Patient"]]
    errors = [i for i in validate_profiles(GENERIC_PATIENT, policy.profiles_for(GENERIC_PATIENT),
                                           registry=registry, policy=policy) if i.is_error]
    assert any("Slice 'iin'" in i.diagnostics for i in errors)


def test_national_mode_covers_the_ten_resource_types() -> None:
    assert set(ProfilePolicy.national().required) == {
        "Patient", "Practitioner", "Organization", "Appointment", "Encounter", "Observation", "Consent",
        "AuditEvent", "ServiceRequest", "MedicationRequest",
    }


def test_declared_and_mandatory_profiles_are_merged_without_duplicates() -> None:
    resource = {"resourceType": "Patient", "meta": {"profile": [KZ_PROFILES["Patient"], "urn:other"]}}
    assert ProfilePolicy.national().profiles_for(resource) == [KZ_PROFILES["Patient"], "urn:other"]


def test_unknown_declared_profile_warns_and_unknown_mandatory_profile_errors(registry: ProfileRegistry) -> None:
    declared = validate_profiles(GENERIC_PATIENT, ["urn:unknown"], registry=registry)
    assert [(i.severity, i.code) for i in declared] == [("warning", "not-supported")]
    policy = ProfilePolicy({"Patient": ("urn:unknown",)})
    mandatory = validate_profiles(GENERIC_PATIENT, ["urn:unknown"], registry=registry, policy=policy)
    assert [(i.severity, i.code) for i in mandatory] == [("error", "not-supported")]


def test_profile_for_another_type_is_an_error(registry: ProfileRegistry) -> None:
    issues = validate_profiles(GENERIC_PATIENT, [KZ_PROFILES["Organization"]], registry=registry)
    assert [(i.severity, i.code) for i in issues] == [("error", "invalid")]


@pytest.mark.req("TM-04")
def test_relaxed_mode_accepts_a_test_certificate_iin(registry: ProfileRegistry) -> None:
    patient = load_json(examples_dir() / "valid" / "Patient-kz-patient-1.json")
    patient = copy.deepcopy(patient)
    patient["identifier"][0]["value"] = "123456789011"
    strict = validate_profiles(patient, [KZ_PROFILES["Patient"]], registry=registry, policy=ProfilePolicy.national())
    relaxed_policy = ProfilePolicy.national(relaxed_iin=True)
    relaxed = validate_profiles(patient, [KZ_PROFILES["Patient"]], registry=registry, policy=relaxed_policy)
    assert any("kz-iin-2" in i.diagnostics for i in strict if i.is_error)
    assert not [i for i in relaxed if i.is_error]


def test_validation_does_not_modify_the_resource(registry: ProfileRegistry) -> None:
    resource = load_json(examples_dir() / "valid" / "Consent-kz-consent-2.json")
    before = copy.deepcopy(resource)
    validate_profiles(resource, [KZ_PROFILES["Consent"]], registry=registry)
    assert resource == before


def test_extension_outside_its_context_is_an_error(registry: ProfileRegistry) -> None:
    patient = load_json(examples_dir() / "valid" / "Patient-kz-patient-1.json")
    patient["extension"] = [{"url": "https://fhir.kzfhir.kz/StructureDefinition/kz-patronymic", "valueString": "x"}]
    errors = [i for i in validate_profiles(patient, [KZ_PROFILES["Patient"]], registry=registry) if i.is_error]
    assert [(i.code, i.expression) for i in errors] == [("structure", "Patient.extension[0]")]
    assert "not allowed on Patient" in errors[0].diagnostics


def test_complex_extension_checks_its_inline_sub_extensions(registry: ProfileRegistry) -> None:
    consent = load_json(examples_dir() / "valid" / "Consent-kz-consent-2.json")
    authority = consent["extension"][-1]
    authority["extension"] = [e for e in authority["extension"] if e["url"] != "verifiedBy"]
    errors = [i for i in validate_profiles(consent, [KZ_PROFILES["Consent"]], registry=registry) if i.is_error]
    assert [i.diagnostics.split(" of ")[0] for i in errors] == ["Slice 'verifiedBy'"]
