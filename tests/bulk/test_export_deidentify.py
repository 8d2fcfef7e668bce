"""``_deidentify=true``: research exports carry no names or IINs, and their references still resolve."""

from __future__ import annotations

import pytest

from fhir_server.operations.export_manifest import DEIDENTIFIED_EXTENSION
from tests.bulk.conftest import ASYNC, download, export, put_all
from tests.bulk.seed import IINS, clinic

pytestmark = [pytest.mark.req("AC-19"), pytest.mark.open_mode]  # export semantics; security: test_export_security.py
SECRET = "operator-secret-for-research-exports"


@pytest.fixture
def secret(monkeypatch):
    monkeypatch.setenv("KZFHIR_EXPORT_DEIDENTIFY_SECRET", SECRET)


async def test_deidentified_export_has_no_names_or_iins_and_its_references_resolve(open_server, secret):
    await put_all(open_server, clinic())
    manifest = await export(open_server, "/Patient/$export?_deidentify=true")
    assert manifest["extension"] == {DEIDENTIFIED_EXTENSION: True}
    raw = b"".join([(await open_server.get(o["url"])).content for o in manifest["output"]])
    for text in [*IINS.values(), "Ахметова", "Садыкова", "Айгуль", "+77010000000", "Abay", "Иванов"]:
        assert text.encode() not in raw
    files = await download(open_server, manifest["output"])
    patients = {p["id"]: p for p in files["Patient"]}
    assert len(patients) == 3
    assert not {"p1", "p2", "p3"} & set(patients)
    assert all("name" not in p and "telecom" not in p for p in patients.values())
    for observation in files["Observation"]:
        assert observation["subject"]["reference"].removeprefix("Patient/") in patients
        assert "display" not in observation["subject"]
        assert {"code": "PSEUDED"}.items() <= observation["meta"]["security"][-1].items()
    per_patient = {}
    for resource in files["Observation"] + files["Condition"]:
        per_patient.setdefault(resource["subject"]["reference"], []).append(resource["resourceType"])
    assert sorted(map(sorted, per_patient.values())) == [["Condition", "Observation"],
                                                         ["Condition", "Observation", "Observation"], ["Observation"]]


async def test_two_deidentified_exports_cannot_be_joined(open_server, secret):
    await put_all(open_server, clinic())
    ids = []
    for _ in range(2):
        manifest = await export(open_server, "/$export?_type=Patient&_deidentify=true")
        ids.append({p["id"] for p in (await download(open_server, manifest["output"]))["Patient"]})
    assert len(ids[0]) == 3 and not ids[0] & ids[1]


async def test_deidentified_export_without_a_configured_secret_is_refused(open_server, monkeypatch):
    monkeypatch.delenv("KZFHIR_EXPORT_DEIDENTIFY_SECRET", raising=False)
    r = await open_server.get("/$export?_deidentify=true", headers=ASYNC)
    assert r.status_code == 400
    assert "KZFHIR_EXPORT_DEIDENTIFY_SECRET" in r.json()["issue"][0]["diagnostics"]


async def test_deidentify_flag_must_be_a_boolean(open_server, secret):
    r = await open_server.get("/$export?_deidentify=yes", headers=ASYNC)
    assert r.status_code == 400
