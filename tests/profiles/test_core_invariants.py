"""R4 core invariants over the official examples: the engine is neither over- nor under-strict."""

from __future__ import annotations

import copy

from fhir_server.validation.profile import INVARIANT_ERRATA, ProfileRegistry, validate_core_invariants
from tests.data import r4_example, r4_examples


def test_official_examples_break_no_core_invariant_once_errata_are_applied(registry: ProfileRegistry) -> None:
    failures = []
    for name in r4_examples():
        resource = r4_example(name)
        untouched = copy.deepcopy(resource)
        errors = [i for i in validate_core_invariants(resource, registry) if i.is_error]
        failures.extend(f"{name}: {i.diagnostics} at {i.expression}" for i in errors)
        assert resource == untouched, f"validation modified {name}"
    assert failures == []


def test_questionnaire_exists_condition_passes_only_with_the_que7_erratum(registry: ProfileRegistry) -> None:
    resource = r4_example("Questionnaire-bb.json")
    assert any(e.key == "que-7" for e in INVARIANT_ERRATA)
    assert not [i for i in validate_core_invariants(resource, registry) if i.is_error]


def test_noshow_appointment_with_reason_is_accepted_thanks_to_app4_erratum(registry: ProfileRegistry) -> None:
    appointment = {"resourceType": "Appointment", "status": "noshow", "cancelationReason": {"text": "x"},
                   "start": "2026-01-01T10:00:00Z", "end": "2026-01-01T10:10:00Z",
                   "participant": [{"actor": {"reference": "Patient/1"}, "status": "accepted"}]}
    assert not [i for i in validate_core_invariants(appointment, registry) if i.is_error]
    appointment["status"] = "booked"
    keys = [i.diagnostics.split(":")[0] for i in validate_core_invariants(appointment, registry) if i.is_error]
    assert keys == ["app-4"]


def test_contained_resource_must_be_referenced_dom3(registry: ProfileRegistry) -> None:
    patient = {"resourceType": "Patient", "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
               "contained": [{"resourceType": "Organization", "id": "o1", "name": "x"}]}
    keys = {i.diagnostics.split(":")[0] for i in validate_core_invariants(patient, registry) if i.is_error}
    assert keys == {"dom-3"}
    patient["managingOrganization"] = {"reference": "#o1"}
    assert not [i for i in validate_core_invariants(patient, registry) if i.is_error]


def test_bundle_entry_resources_are_checked_with_their_own_invariants(registry: ProfileRegistry) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Period" if False else "Encounter", "status": "planned",
                                                 "class": {"code": "AMB"},
                                                 "period": {"start": "2026-02-01", "end": "2026-01-01"}}}]}
    issues = [i for i in validate_core_invariants(bundle, registry) if i.is_error]
    assert [(i.diagnostics.split(":")[0], i.expression) for i in issues] == [
        ("per-1", "Bundle.entry[0].resource.period")
    ]


def test_unknown_resource_type_is_reported(registry: ProfileRegistry) -> None:
    issues = validate_core_invariants({"resourceType": "Nonsense"}, registry)
    assert [i.code for i in issues] == ["not-supported"]
