"""The pieces under the HTTP layer: kick-off parsing, group membership, the NDJSON files, job documents."""

from __future__ import annotations

import stat

import pytest

from fhir_server.errors import FhirError
from fhir_server.operations.export import group_members
from fhir_server.operations.export_files import ERROR_FILE, NdjsonFiles, file_path
from fhir_server.operations.export_jobs import ExportJob, OutputFile
from fhir_server.operations.export_params import PATIENT, SYSTEM, ExportRequest, Prefer, parse_request


def _parse(level: str, **params: list[object]) -> ExportRequest:
    return parse_request(level, None, dict(params), Prefer(respond_async=True), lambda t: t[:1].isupper())


def test_prefer_reads_respond_async_and_lenient_handling_in_any_order():
    assert Prefer.parse("handling=lenient, respond-async") == Prefer(True, True)
    assert Prefer.parse("respond-async") == Prefer(True, False)
    assert Prefer.parse("return=minimal") == Prefer(False, False)
    assert Prefer.parse(None) == Prefer(False, False)


def test_patient_parameters_accept_relative_and_absolute_references_once_each():
    spec = _parse(PATIENT, patient=[{"reference": "Patient/a"}, {"reference": "https://x.kz/fhir/Patient/b"},
                                    "Patient/a"])
    assert spec.patients == ("a", "b")
    with pytest.raises(FhirError):
        _parse(PATIENT, patient=[{"reference": "Observation/o1"}])
    with pytest.raises(FhirError):
        _parse(SYSTEM, patient=[{"reference": "Patient/a"}])


def test_type_lists_may_repeat_and_are_kept_in_order_without_duplicates():
    assert _parse(SYSTEM, _type=["Patient,Observation", "Patient", " Condition "]).types == (
        "Patient", "Observation", "Condition")


def test_export_request_survives_its_json_form():
    spec = ExportRequest("group", "g1", ("Patient",), "2025-01-01T00:00:00Z", ("p1",), True, ("_elements",))
    assert ExportRequest.from_json(spec.to_json()) == spec


def test_job_document_round_trips_through_bytes():
    job = ExportJob("a" * 32, ("sub", None, "940140000385"), "http://x/$export", ExportRequest(SYSTEM),
                    transaction_time="2025-01-01T00:00:00.000001Z",
                    output=[OutputFile("Patient", "Patient.1.ndjson", 3)])
    again = ExportJob.from_bytes(job.id, job.to_bytes())
    assert again == job
    assert again.file("Patient.1.ndjson") == OutputFile("Patient", "Patient.1.ndjson", 3)
    assert again.file("Observation.1.ndjson") is None


def test_group_members_are_the_active_patient_entities():
    group = {"resourceType": "Group", "member": [
        {"entity": {"reference": "Patient/a"}}, {"entity": {"reference": "Patient/b"}, "inactive": True},
        {"entity": {"reference": "Practitioner/d"}}, {"entity": {"reference": "Patient/a"}}, {"entity": {}},
    ]}
    assert group_members(group) == ("a",)


def test_files_rotate_per_type_and_are_private_to_the_server(tmp_path):
    files = NdjsonFiles(tmp_path / "job", max_lines=2)
    for i in range(3):
        files.write("Observation", b'{"id":"o%d"}' % i)
    files.write("Patient", b'{"id":"p"}')
    done = files.close()
    assert [(f.name, f.count) for f in done] == [("Observation.1.ndjson", 2), ("Observation.2.ndjson", 1),
                                                 ("Patient.1.ndjson", 1)]
    assert (tmp_path / "job" / "Observation.1.ndjson").read_bytes() == b'{"id":"o0"}\n{"id":"o1"}\n'
    assert stat.S_IMODE((tmp_path / "job").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "job" / "Patient.1.ndjson").stat().st_mode) == 0o600
    assert files.write_errors([]) == []
    assert files.write_errors([b"{}"]) == [OutputFile("OperationOutcome", ERROR_FILE, 1)]


def test_file_names_outside_the_naming_scheme_are_never_served(tmp_path):
    (tmp_path / "Patient.1.ndjson").write_bytes(b"{}\n")
    assert file_path(tmp_path, "Patient.1.ndjson") == tmp_path / "Patient.1.ndjson"
    for name in ("../Patient.1.ndjson", "Patient.1.ndjson/..", "patient.1.ndjson", "Patient.0.ndjson", ".ndjson"):
        assert file_path(tmp_path, name) is None
