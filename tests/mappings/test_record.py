"""build_record: the MD-D data set from the KZ examples, missing items as issues, input checks."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from mappings import build_record
from mappings.codes import EXT_CHANNEL, EXT_FORM, EXT_NEXT_VISIT, MDD_PATHS
from tests.mappings.conftest import Resources

ENC = "Encounter/kz-encounter-1"
NOTE = "Composition/kz-consult-note-1"


def _drop_extension(resources: Resources, url: str) -> None:
    encounter = resources[ENC]
    encounter["extension"] = [e for e in encounter["extension"] if e["url"] != url]


def _drop_section(resources: Resources, item: str) -> None:
    note = resources[NOTE]
    note["section"] = [s for s in note["section"] if s["code"]["coding"][0]["code"] != item]


def _no_note(resources: Resources) -> None:
    _drop_section(resources, "7")
    del resources["Observation/kz-observation-1"]


def _no_plan(resources: Resources) -> None:
    _drop_section(resources, "9")
    _drop_extension(resources, EXT_NEXT_VISIT)


BREAKS: dict[int, Callable[[Resources], Any]] = {
    1: lambda r: _drop_extension(r, EXT_FORM),
    2: lambda r: _drop_extension(r, EXT_CHANNEL),
    3: lambda r: r.pop("Patient/kz-patient-1"),
    4: lambda r: r[ENC].pop("serviceType"),
    5: lambda r: r.pop("Practitioner/kz-practitioner-1"),
    6: lambda r: r[ENC].pop("diagnosis"),
    7: _no_note,
    8: lambda r: _drop_section(r, "8"),
    9: _no_plan,
}


@pytest.mark.req("MD-D")
@pytest.mark.req("TM-11")
def test_record_of_the_kz_examples_has_every_md_d_item(service_set: Resources) -> None:
    record = build_record(service_set)
    assert record.ok and record.missing_items == ()
    assert record.form is not None and record.form.code == "consultation"
    assert record.channel is not None and record.channel.display == "Видеосвязь"
    assert record.patient is not None and record.patient.iin == "850315300019"
    assert record.patient.full_name == "Серікбаев Асхат Маратұлы"
    assert record.service is not None and (record.service.code, record.service.display) == ("A01.001.000",
                                                                                           "Приём: терапевт")
    assert record.practitioner is not None and record.practitioner.person.iin == "900101412344"
    assert [(d.icd10.code, d.kind and d.kind.code) for d in record.diagnoses] == [("J06.9", "main"),
                                                                                  ("I10", "concomitant")]
    assert record.note is not None and "Зев гиперемирован" in (record.note.text or "")
    assert record.conclusion == "ОРВИ, лёгкое течение. Лечение амбулаторное."
    assert record.plan is not None and record.plan.next_visit == "2026-02-01"
    assert [r.reference for r in record.referrals] == ["ServiceRequest/kz-servicerequest-1",
                                                       "ServiceRequest/kz-servicerequest-2"]
    assert [p.dosage for p in record.prescriptions] == ["По 1 таблетке утром"]
    assert [(d.kind.code, d.action and d.action.code) for d in record.disability] == [("sheet", "open")]
    assert [r.reference for r in record.mse_referrals] == ["ServiceRequest/kz-servicerequest-3"]


@pytest.mark.req("MD-D")
def test_each_item_names_the_fhir_path_it_came_from(service_set: Resources) -> None:
    record = build_record(service_set)
    assert str(record.item_sources(3)[0]) == "Patient/kz-patient-1: Patient.identifier[0].value"
    assert any(s.path == "Encounter.extension[0].valueCoding.code" for s in record.item_sources(1))
    assert {s.reference for s in record.item_sources(6)} >= {"Condition/kz-condition-1", ENC}
    assert record.item_sources(8)[0].path == "Composition.section[1].text.div"
    assert all(record.item_sources(n) for n in range(1, 14))


@pytest.mark.req("MD-D")
@pytest.mark.parametrize("item", sorted(BREAKS))
def test_missing_mandatory_item_is_an_issue_naming_the_item_and_path(service_set: Resources, item: int) -> None:
    resources = copy.deepcopy(service_set)
    BREAKS[item](resources)
    record = build_record(resources)
    assert record.missing_items == (item,)
    errors = [i for i in record.issues if i.is_error]
    assert errors and all(i.diagnostics.startswith(f"MD-D {item} ") for i in errors)
    assert errors[0].code == "required" and errors[0].expression == MDD_PATHS[item]


@pytest.mark.req("MD-D")
def test_optional_items_10_to_13_may_be_absent(example_set: Resources) -> None:
    kept = {k: v for k, v in example_set.items() if not k.startswith(("ServiceRequest", "MedicationRequest",
                                                                       "DocumentReference"))}
    record = build_record(kept)
    assert record.ok
    assert (record.referrals, record.prescriptions, record.disability, record.mse_referrals) == ((), (), (), ())


def test_invalid_patient_iin_is_an_error_at_the_identifier(service_set: Resources) -> None:
    service_set["Patient/kz-patient-1"]["identifier"][0]["value"] = "850315300018"
    record = build_record(service_set)
    [issue] = [i for i in record.issues if i.is_error]
    assert issue.code == "value" and issue.expression == "Patient.identifier[0].value"
    assert "MD-D 3 patient IIN" in issue.diagnostics and "check digit" in issue.diagnostics


def test_relaxed_iin_accepts_nca_test_certificate_numbers(service_set: Resources) -> None:
    service_set["Practitioner/kz-practitioner-1"]["identifier"][0]["value"] = "123456789011"
    assert not build_record(service_set).ok
    assert build_record(service_set, relaxed_iin=True).ok


def test_invalid_bin_of_the_provider_is_an_error(service_set: Resources) -> None:
    service_set["Organization/kz-organization-1"]["identifier"][0]["value"] = "150640000011"
    record = build_record(service_set)
    assert any(i.is_error and i.expression == "Organization.identifier[0].value" for i in record.issues)


def test_icd10_code_outside_the_classification_is_an_error(service_set: Resources) -> None:
    service_set["Condition/kz-condition-2"]["code"]["coding"][0]["code"] = "Q99.99.9"
    record = build_record(service_set)
    [issue] = [i for i in record.issues if i.is_error]
    assert issue.code == "code-invalid" and "MD-D 6 ICD-10" in issue.diagnostics


def test_unknown_kz_code_is_an_error(service_set: Resources) -> None:
    service_set[ENC]["extension"][1]["valueCoding"]["code"] = "pigeon"
    record = build_record(service_set)
    assert [i.expression for i in record.issues if i.is_error] == ["Encounter.extension[1].valueCoding"]


def test_diagnosis_without_kind_or_type_is_reported_under_item_6(service_set: Resources) -> None:
    service_set[ENC]["diagnosis"][1].pop("extension")
    record = build_record(service_set)
    assert 6 not in record.missing_items  # the item is there, but incomplete
    assert sorted(i.diagnostics.split(" has no ")[1] for i in record.issues if i.is_error) == [
        "diagnosis kind extension", "diagnosis type extension"]


def test_practitioner_role_gives_the_doctor_specialty_and_organization(service_set: Resources) -> None:
    service_set["PractitionerRole/r1"] = {
        "resourceType": "PractitionerRole", "id": "r1",
        "practitioner": {"reference": "Practitioner/kz-practitioner-1"},
        "organization": {"reference": "Organization/kz-organization-1"},
        "specialty": [{"coding": [{"system": "urn:oid:1.2.398.0", "code": "therapist", "display": "Терапевт"}]}],
    }
    service_set[ENC]["participant"] = [{"individual": {"reference": "PractitionerRole/r1"}}]
    service_set[ENC].pop("serviceProvider")
    record = build_record(service_set)
    assert record.practitioner is not None and record.practitioner.role == "PractitionerRole/r1"
    assert record.practitioner.specialty is not None and record.practitioner.specialty.label == "Терапевт"
    assert record.provider is not None and record.provider.bin == "150640000010"


def test_contained_patient_and_absolute_keys_resolve(service_set: Resources) -> None:
    patient = service_set.pop("Patient/kz-patient-1")
    encounter = service_set.pop(ENC)
    encounter["contained"] = [{**patient, "id": "p"}]
    encounter["subject"] = {"reference": "#p"}
    service_set["https://mis.example.kz/fhir/Encounter/kz-encounter-1"] = encounter
    record = build_record(service_set)
    assert record.patient is not None and record.patient.reference.endswith("Encounter/kz-encounter-1#p")
    assert record.encounter == "https://mis.example.kz/fhir/Encounter/kz-encounter-1"


def test_resource_of_another_encounter_is_left_out(service_set: Resources) -> None:
    service_set["MedicationRequest/kz-medicationrequest-1"]["encounter"] = {"reference": "Encounter/other"}
    record = build_record(service_set)
    assert record.prescriptions == ()
    assert any(i.severity == "information" and "another Encounter" in i.diagnostics for i in record.issues)


def test_funding_source_falls_back_to_the_coverage(service_set: Resources) -> None:
    _drop_extension(service_set, "https://fhir.kzfhir.kz/StructureDefinition/kz-funding-source")
    record = build_record(service_set)
    assert record.funding is not None and record.funding.code == "osms"
    assert record.trace["funding.code"].reference == "Coverage/kz-osms-1"


def test_osms_insured_is_false_outside_the_coverage_period(service_set: Resources) -> None:
    service_set["Coverage/kz-osms-1"]["period"]["end"] = "2025-12-31"
    assert build_record(service_set).osms_insured is False
    del service_set["Coverage/kz-osms-1"]
    assert build_record(service_set).osms_insured is None


def test_several_encounters_need_the_one_to_map(service_set: Resources) -> None:
    service_set["Encounter/x"] = {"resourceType": "Encounter", "id": "x", "status": "planned"}
    with pytest.raises(ValueError, match="2 Encounters"):
        build_record(service_set)
    assert build_record(service_set, ENC).encounter == ENC


def test_unknown_disability_action_is_an_error(service_set: Resources) -> None:
    service_set["DocumentReference/kz-sick-leave-1"]["category"][0]["coding"][0]["code"] = "reopen"
    record = build_record(service_set)
    assert [i.code for i in record.issues if i.is_error] == ["code-invalid"]


def test_record_id_changes_with_the_encounter_version(service_set: Resources) -> None:
    first = build_record(service_set).record_id
    service_set[ENC]["meta"]["versionId"] = "4"
    assert build_record(service_set).record_id != first
    assert first.startswith("urn:uuid:")


def test_coding_without_a_code_counts_as_missing(service_set: Resources) -> None:
    service_set[ENC]["extension"][0]["valueCoding"].pop("code")
    assert build_record(service_set).missing_items == (1,)
