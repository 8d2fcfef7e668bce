"""Patient membership from the R4 CompartmentDefinition; clinical dates; FHIR date ranges."""

from __future__ import annotations

import pytest

from fhir_server.search.compartments import patient_compartment as patient_ids_of
from fhir_server.security.fhirtime import instant_range, period_covers, to_instant_text
from fhir_server.security.policy import clinical_instant
from tests.data import r4_example


def test_observation_belongs_to_subject_and_performing_patient() -> None:
    observation = {
        "resourceType": "Observation",
        "subject": {"reference": "Patient/7"},
        "performer": [
            {"reference": "https://fhir.example.kz/fhir/Patient/8/_history/2"},
            {"reference": "Practitioner/1"},
        ],
        "focus": [{"reference": "Patient/9"}],
    }
    # focus is not an R4 compartment parameter, but a resource that points at a patient is theirs
    assert patient_ids_of(observation) == {"7", "8", "9"}


def test_patient_is_in_its_own_compartment_with_linked_records() -> None:
    patient = {
        "resourceType": "Patient",
        "id": "7",
        "link": [{"other": {"reference": "Patient/70"}, "type": "seealso"}],
    }
    assert patient_ids_of(patient) == {"7", "70"}


def test_condition_subject_must_be_a_patient() -> None:
    assert patient_ids_of({"resourceType": "Condition", "subject": {"reference": "Group/g1"}}) == set()


@pytest.mark.req("AC-12")
def test_types_outside_the_compartment_definition_still_belong_to_referenced_patients() -> None:
    task = {"resourceType": "Task", "for": {"reference": "Patient/7"}, "owner": {"reference": "Practitioner/1"}}
    device = {"resourceType": "Device", "patient": {"reference": "Patient/8"}}
    assert patient_ids_of(task) == {"7"}
    assert patient_ids_of(device) == {"8"}
    assert patient_ids_of({"resourceType": "Practitioner", "id": "1"}) == set()


def test_document_bundle_belongs_to_the_patients_of_its_entries() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "document",
        "entry": [
            {"resource": {"resourceType": "Patient", "id": "7"}},
            {"resource": {"resourceType": "Observation", "subject": {"reference": "Patient/7"}}},
        ],
    }
    assert patient_ids_of(bundle) == {"7"}


def test_contained_resources_count_for_membership() -> None:
    report = {
        "resourceType": "DiagnosticReport",
        "subject": {"reference": "Patient/7"},
        "contained": [{"resourceType": "Observation", "id": "x", "subject": {"reference": "Patient/8"}}],
    }
    assert patient_ids_of(report) == {"7", "8"}


def test_membership_of_r4_examples_is_computed_without_errors() -> None:
    names = ("Encounter-f001.json", "AllergyIntolerance-example.json", "Task-example1.json")
    found = {name: patient_ids_of(r4_example(name)) for name in names}
    assert all(ids for ids in found.values()), found


def test_clinical_instant_uses_type_specific_dates_then_last_updated() -> None:
    observation = {"resourceType": "Observation", "effectivePeriod": {"start": "2024-02-01T00:00:00Z"}}
    condition = {"resourceType": "Condition", "onsetDateTime": "2023-05-05T00:00:00Z", "recordedDate": "2024-01-01"}
    patient = {"resourceType": "Patient", "meta": {"lastUpdated": "2025-01-01T00:00:00Z"}}
    assert to_instant_text(clinical_instant(observation) or 0) == "2024-02-01T00:00:00.000Z"
    assert to_instant_text(clinical_instant(condition) or 0) == "2023-05-05T00:00:00.000Z"
    assert to_instant_text(clinical_instant(patient) or 0) == "2025-01-01T00:00:00.000Z"
    assert clinical_instant({"resourceType": "Patient"}) is None


def test_partial_dates_cover_their_whole_precision_in_kazakhstan_time() -> None:
    low, high = instant_range("2025-03") or (0, 0)
    assert to_instant_text(low) == "2025-02-28T19:00:00.000Z"  # 1 March 00:00 at UTC+05:00 (the server's zone)
    assert to_instant_text(high) == "2025-03-31T18:59:59.999Z"
    assert instant_range("2025-02-30") is None
    assert instant_range("not a date") is None


def test_period_end_is_inclusive_and_unreadable_bounds_cover_nothing() -> None:
    at = instant_range("2025-12-31T23:00:00+05:00")
    assert at is not None
    assert period_covers({"end": "2025-12-31"}, at[0])
    assert not period_covers({"end": "2025-12-30"}, at[0])
    assert not period_covers({"start": "yesterday"}, at[0])
    assert period_covers(None, at[0])
