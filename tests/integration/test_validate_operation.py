"""$validate over HTTP and write-time profile enforcement (issue 4 §5)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from profiles import examples_dir
from tests.conftest import BASE

# FHIR semantics, not access: the server runs in open mode (security: tests/security_http/).
pytestmark = pytest.mark.open_mode

FHIR_JSON = {"content-type": "application/fhir+json"}
KZ_PATIENT = "https://fhir.kzfhir.kz/StructureDefinition/kz-patient"
INVALID = json.loads((examples_dir() / "invalid" / "index.json").read_text())


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _errors(outcome: dict) -> list[dict]:
    return [i for i in outcome["issue"] if i["severity"] in ("error", "fatal")]


async def test_validate_valid_kz_examples_have_no_errors(client):
    for path in sorted((examples_dir() / "valid").glob("*.json")):
        resource = _load(path)
        r = await client.post(f"/{resource['resourceType']}/$validate", json=resource, headers=FHIR_JSON)
        assert r.status_code == 200
        assert _errors(r.json()) == [], path.name


@pytest.mark.parametrize("name", sorted(INVALID))
async def test_validate_invalid_kz_example_reports_its_rule(client, name):
    rule = INVALID[name]
    resource = _load(examples_dir() / "invalid" / name)
    r = await client.post(f"/{resource['resourceType']}/$validate", json=resource, headers=FHIR_JSON)
    assert r.status_code == 200
    errors = _errors(r.json())
    assert errors, name
    assert any(i["code"] == rule["code"] for i in errors), (name, errors)


async def test_validate_with_parameters_profile_and_mode(client):
    patient = {"resourceType": "Patient", "name": [{"family": "X"}]}
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": patient}, {"name": "mode", "valueCode": "create"},
        {"name": "profile", "valueUri": KZ_PATIENT}]}
    r = await client.post("/Patient/$validate", json=params, headers=FHIR_JSON)
    assert r.status_code == 200
    assert _errors(r.json())  # the KZ profile wants an IIN
    plain = await client.post("/Patient/$validate", json=patient, headers=FHIR_JSON)
    assert _errors(plain.json()) == []


async def test_validate_reports_structure_errors_with_expression(client):
    r = await client.post("/Patient/$validate", json={"resourceType": "Patient", "gender": "robot"},
                          headers=FHIR_JSON)
    assert r.status_code == 200
    assert _errors(r.json())[0]["expression"] == ["Patient.gender"]


async def test_instance_validate_of_stored_resource_and_update_mode(client, patient):
    created = (await client.post("/Patient", json=patient, headers=FHIR_JSON)).json()
    r = await client.get(f"/Patient/{created['id']}/$validate")
    assert r.status_code == 200 and _errors(r.json()) == []
    body = {**patient, "id": "other"}
    r = await client.post(f"/Patient/{created['id']}/$validate?mode=update", json=body, headers=FHIR_JSON)
    assert _errors(r.json())[0]["expression"] == ["id"]
    assert (await client.get("/Patient/missing/$validate")).status_code == 404


async def test_declared_profile_is_enforced_on_write(client):
    patient = {"resourceType": "Patient", "meta": {"profile": [KZ_PATIENT]}, "name": [{"family": "X"}]}
    r = await client.post("/Patient", json=patient, headers=FHIR_JSON)
    assert r.status_code == 422
    assert (await client.get("/Patient/_history")).json()["total"] == 0


async def test_national_strict_mode_requires_kz_profiles(tmp_path):
    app = create_app(Settings(database=tmp_path / "s.sqlite", require_kz_profiles=True,
                              synchronous_full=False, security_enabled=False))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE
    ) as c:
        r = await c.post("/Patient", json={"resourceType": "Patient", "name": [{"family": "X"}]}, headers=FHIR_JSON)
        assert r.status_code == 422
        valid = _load(examples_dir() / "valid" / "Patient-kz-patient-1.json")
        assert (await c.post("/Patient", json=valid, headers=FHIR_JSON)).status_code == 201
        # types without a KZ profile stay plain R4
        org_free = {"resourceType": "Location", "name": "Кабинет 1"}
        assert (await c.post("/Location", json=org_free, headers=FHIR_JSON)).status_code == 201
