"""System, patient and group level exports in open mode (Bulk Data Access IG v2, NDJSON files)."""

from __future__ import annotations

import pytest

from tests.bulk.conftest import download, export, put_all
from tests.bulk.seed import clinic, group, observation

# FHIR semantics, not access: the server runs in open mode (security: tests/security_http/).
pytestmark = pytest.mark.open_mode


def _ids(files, resource_type):
    return sorted(r["id"] for r in files.get(resource_type, []))


async def test_system_export_writes_every_stored_resource_in_its_type_files(open_server):
    await put_all(open_server, clinic())
    manifest = await export(open_server, "/$export")
    files = await download(open_server, manifest["output"])
    assert manifest["requiresAccessToken"] is False  # open mode: the file URLs need no token
    assert manifest["error"] == []
    for resource_type, resources in files.items():
        stored = (await open_server.get(f"/{resource_type}?_summary=count")).json()["total"]
        assert len(resources) == stored, resource_type
        assert len({r["id"] for r in resources}) == len(resources)
    assert _ids(files, "Observation") == ["o-orphan", "o1", "o2", "o3", "o4"]
    assert _ids(files, "Practitioner") == ["dr1"]


async def test_kick_off_names_the_status_url_and_the_manifest_echoes_the_request(open_server):
    await put_all(open_server, clinic())
    r = await open_server.get("/$export?_type=Patient", headers={"Prefer": "respond-async"})
    assert r.status_code == 202
    status_url = r.headers["content-location"]
    assert status_url.startswith("http://kzfhir.test/$export-status/")
    manifest = await export(open_server, "/$export?_type=Patient&_outputFormat=application%2Ffhir%2Bndjson")
    assert manifest["request"] == "http://kzfhir.test/$export?_type=Patient&_outputFormat=application%2Ffhir%2Bndjson"
    assert manifest["transactionTime"].endswith("Z")
    assert [o["url"].rsplit("/", 1)[1] for o in manifest["output"]] == ["Patient.1.ndjson"]


async def test_type_parameter_limits_the_export_to_those_types(open_server):
    await put_all(open_server, clinic())
    manifest = await export(open_server, "/$export?_type=Patient,Condition&_outputFormat=ndjson")
    files = await download(open_server, manifest["output"])
    assert sorted(files) == ["Condition", "Patient"]
    assert _ids(files, "Condition") == ["c1", "c2"]


async def test_since_returns_only_resources_changed_after_it(open_server):
    await put_all(open_server, clinic())
    since = (await open_server.get("/Condition/c2")).json()["meta"]["lastUpdated"]  # the last one written
    await put_all(open_server, [observation("o5", "p1"), observation("o1", "p1", "99")])
    manifest = await export(open_server, f"/$export?_since={since}")
    files = await download(open_server, manifest["output"])
    assert sorted(files) == ["Observation"]
    assert _ids(files, "Observation") == ["o1", "o5"]
    assert files["Observation"][0]["valueQuantity"]["value"] == 99


async def test_export_does_not_include_what_changed_after_the_transaction_time(open_server):
    await put_all(open_server, clinic())
    manifest = await export(open_server, "/$export?_type=Observation")
    await put_all(open_server, [observation("o6", "p2")])
    files = await download(open_server, manifest["output"])
    assert "o6" not in _ids(files, "Observation")
    assert all(r["meta"]["lastUpdated"] <= manifest["transactionTime"] for r in files["Observation"])


async def test_files_rotate_after_the_configured_number_of_lines(open_server, monkeypatch):
    monkeypatch.setenv("KZFHIR_EXPORT_MAX_LINES_PER_FILE", "2")
    await put_all(open_server, clinic())
    manifest = await export(open_server, "/$export?_type=Observation")
    names = [o["url"].rsplit("/", 1)[1] for o in manifest["output"]]
    assert names == ["Observation.1.ndjson", "Observation.2.ndjson", "Observation.3.ndjson"]
    assert [o["count"] for o in manifest["output"]] == [2, 2, 1]
    files = await download(open_server, manifest["output"])
    assert len(_ids(files, "Observation")) == 5


async def test_decimals_keep_their_exact_text_in_the_files(open_server):
    raw = await open_server.put("/Observation/o1", content=b'{"resourceType":"Observation","id":"o1",'
                                b'"status":"final","code":{"text":"x"},"valueQuantity":{"value":72.50}}',
                                headers={"content-type": "application/fhir+json"})
    assert raw.status_code == 201
    manifest = await export(open_server, "/$export?_type=Observation")
    body = (await open_server.get(manifest["output"][0]["url"])).content
    assert body == raw.content + b"\n"
    assert b'"value":72.50' in body


async def test_patient_level_export_returns_only_patient_compartment_data(open_server):
    await put_all(open_server, clinic())
    manifest = await export(open_server, "/Patient/$export")
    files = await download(open_server, manifest["output"])
    assert sorted(files) == ["Condition", "Observation", "Patient"]  # no Practitioner: directory data
    assert "o-orphan" not in _ids(files, "Observation")  # in no patient's compartment
    assert _ids(files, "Patient") == ["p1", "p2", "p3"]


async def test_post_kick_off_with_patient_parameters_exports_those_patients(open_server):
    await put_all(open_server, clinic())
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "_type", "valueString": "Patient,Observation"},
        {"name": "patient", "valueReference": {"reference": "Patient/p2"}},
        {"name": "patient", "valueReference": {"reference": "http://kzfhir.test/Patient/p3"}},
    ]}
    manifest = await export(open_server, "/Patient/$export", body=body)
    files = await download(open_server, manifest["output"])
    assert _ids(files, "Patient") == ["p2", "p3"]
    assert _ids(files, "Observation") == ["o3", "o4"]


async def test_group_export_returns_the_data_of_its_active_members(open_server):
    await put_all(open_server, [*clinic(), group("g1", [("p1", False), ("p2", False), ("p3", True)])])
    manifest = await export(open_server, "/Group/g1/$export?_type=Patient,Observation")
    files = await download(open_server, manifest["output"])
    assert _ids(files, "Patient") == ["p1", "p2"]
    assert _ids(files, "Observation") == ["o1", "o2", "o3"]


async def test_group_export_of_an_unknown_group_is_404(open_server):
    r = await open_server.get("/Group/nope/$export", headers={"Prefer": "respond-async"})
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("query", "expression"),
    [
        ("_outputFormat=text%2Fcsv", "_outputFormat"),
        ("_type=NotAType", "_type"),
        ("_since=yesterday", "_since"),
        ("_typeFilter=Observation%3Fstatus%3Dfinal", "_typeFilter"),
        ("_elements=id", "_elements"),
        ("includeAssociatedData=LatestProvenanceResources", "includeAssociatedData"),
    ],
)
async def test_unsupported_or_invalid_kick_off_parameters_are_400(open_server, query, expression):
    r = await open_server.get(f"/$export?{query}", headers={"Prefer": "respond-async"})
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == [expression]


async def test_patient_level_export_refuses_types_outside_the_patient_compartment(open_server):
    r = await open_server.get("/Patient/$export?_type=Practitioner", headers={"Prefer": "respond-async"})
    assert r.status_code == 400


async def test_lenient_handling_ignores_unsupported_parameters_and_says_so(open_server):
    await put_all(open_server, clinic())
    manifest = await export(open_server, "/$export?_type=Patient&_typeFilter=Patient%3Fgender%3Dmale",
                            headers={"Prefer": "respond-async, handling=lenient"})
    files = await download(open_server, manifest["output"])
    assert len(files["Patient"]) == 3  # the filter was not applied
    errors = await download(open_server, manifest["error"])
    assert errors["OperationOutcome"][0]["issue"][0]["expression"] == ["_typeFilter"]
