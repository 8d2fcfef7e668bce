"""StructureDefinitions uploaded to the server are used for validation (issue 14 §1): declared in
meta.profile, named by $validate?profile=, after a restart too; one whose snapshot cannot be made is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from tests.conftest import BASE

pytestmark = pytest.mark.open_mode

FHIR_JSON = {"content-type": "application/fhir+json"}
URL = "https://regulator.example.kz/StructureDefinition/patient-with-birthdate"


def _profile(url: str = URL, path: str = "Patient.birthDate") -> dict[str, Any]:
    return {
        "resourceType": "StructureDefinition", "id": "patient-with-birthdate", "url": url,
        "name": "PatientWithBirthDate", "status": "active", "kind": "resource", "abstract": False,
        "type": "Patient", "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
        "derivation": "constraint",
        "differential": {"element": [{"id": path, "path": path, "min": 1}]},
    }  # fmt: skip


def _errors(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in body.get("issue", []) if i["severity"] in ("error", "fatal")]


PATIENT = {"resourceType": "Patient", "active": True, "meta": {"profile": [URL]}}


async def test_an_uploaded_profile_is_enforced_on_write_and_in_validate(client: httpx.AsyncClient) -> None:
    before = await client.post("/Patient", json=PATIENT, headers=FHIR_JSON)
    assert before.status_code == 201  # unknown profile: a warning only
    assert (await client.post("/StructureDefinition", json=_profile(), headers=FHIR_JSON)).status_code == 201
    refused = await client.post("/Patient", json=PATIENT, headers=FHIR_JSON)
    assert refused.status_code == 422
    assert any(e["expression"] == ["Patient.birthDate"] for e in _errors(refused.json()))
    plain = {"resourceType": "Patient", "active": True}
    r = await client.post(f"/Patient/$validate?profile={URL}", json=plain, headers=FHIR_JSON)
    assert [e["expression"] for e in _errors(r.json())] == [["Patient.birthDate"]]
    ok = await client.post("/Patient", json={**PATIENT, "birthDate": "1990-01-01"}, headers=FHIR_JSON)
    assert ok.status_code == 201


async def test_a_profile_without_a_derivable_snapshot_is_refused(client: httpx.AsyncClient) -> None:
    broken = _profile("https://regulator.example.kz/StructureDefinition/broken", "Patient..unit")
    r = await client.post("/StructureDefinition", json=broken, headers=FHIR_JSON)
    assert r.status_code == 422
    assert "snapshot" in _errors(r.json())[0]["diagnostics"]


async def test_uploaded_profiles_are_known_again_after_a_restart(tmp_path: Path) -> None:
    settings = Settings(database=tmp_path / "db.sqlite", synchronous_full=False, security_enabled=False,
                        dev_key_path=tmp_path / "dev-jwks.json")
    for step in ("upload", "restart"):
        app = create_app(settings)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE, timeout=60
        ) as client:
            if step == "upload":
                r = await client.post("/StructureDefinition", json=_profile(), headers=FHIR_JSON)
                assert r.status_code == 201
            else:
                refused = await client.post("/Patient", json=PATIENT, headers=FHIR_JSON)
                assert refused.status_code == 422
