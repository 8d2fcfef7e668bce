"""Rules that hold without a declared profile, on write and in $validate alike (issue 14 §1-2): reference
targets, extensions (R4 core definitions, contexts, value types, unknown ones), declared core profiles and
Attachment.size; and the core profiles R4 implies (vital signs), which only $validate and strict writes
impose. What each write level refuses is in test_write_levels.py."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.open_mode

FHIR_JSON = {"content-type": "application/fhir+json"}


def _observation(**extra: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "a finding"}, **extra}


def _errors(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in body.get("issue", []) if i["severity"] in ("error", "fatal")]


async def _write_and_validate(client: httpx.AsyncClient, resource: dict[str, Any]) -> tuple[httpx.Response, list]:
    write = await client.post(f"/{resource['resourceType']}", json=resource, headers=FHIR_JSON)
    checked = await client.post(f"/{resource['resourceType']}/$validate", json=resource, headers=FHIR_JSON)
    return write, _errors(checked.json())


async def test_a_reference_to_a_type_the_element_does_not_allow_is_refused_at_write(client: httpx.AsyncClient) -> None:
    write, errors = await _write_and_validate(client, _observation(subject={"reference": "Medication/1"}))
    assert write.status_code == 422
    issue = next(i for i in write.json()["issue"] if i["severity"] == "error")
    assert issue["expression"] == ["Observation.subject"]
    assert "Medication" in issue["diagnostics"]
    assert [e["expression"] for e in errors] == [["Observation.subject"]]
    ok, errors = await _write_and_validate(client, _observation(subject={"reference": "Patient/1"}))
    assert ok.status_code == 201 and errors == []


async def test_reference_types_come_from_type_absolute_urls_and_contained_targets(client: httpx.AsyncClient) -> None:
    typed = _observation(subject={"type": "Device", "identifier": {"value": "x"}}, performer=[
        {"reference": "http://other.example.org/fhir/Location/9"}])
    write, errors = await _write_and_validate(client, typed)
    assert write.status_code == 422
    assert {e["expression"][0] for e in errors} == {"Observation.performer[0]"}
    contained = _observation(contained=[{"resourceType": "Medication", "id": "m"}], subject={"reference": "#m"})
    write, errors = await _write_and_validate(client, contained)
    assert write.status_code == 422 and errors


async def test_an_unknown_modifier_extension_is_an_error_even_in_an_example_domain(client: httpx.AsyncClient) -> None:
    for url in ("http://example.org/fhir/StructureDefinition/flag", "https://vendor.kz/ext/flag"):
        resource = {"resourceType": "Patient", "modifierExtension": [{"url": url, "valueBoolean": True}]}
        write, errors = await _write_and_validate(client, resource)
        assert write.status_code == 422
        assert errors[0]["expression"] == ["Patient.modifierExtension[0]"]


async def test_an_extension_nobody_defines_is_an_error_except_in_example_domains(client: httpx.AsyncClient) -> None:
    unknown = {"resourceType": "Patient", "extension": [{"url": "https://vendor.kz/ext/x", "valueString": "a"}]}
    write, errors = await _write_and_validate(client, unknown)
    assert errors  # $validate judges as the reference validator
    assert write.status_code == 201  # a default write stores it with a warning (strict writes refuse it)
    example = {"resourceType": "Patient", "extension": [{"url": "http://example.org/ext/x", "valueString": "a"}]}
    write, errors = await _write_and_validate(client, example)
    assert write.status_code == 201 and errors == []


async def test_core_extensions_are_checked_for_context_and_value_type(client: httpx.AsyncClient) -> None:
    mothers_family = "http://hl7.org/fhir/StructureDefinition/humanname-mothers-family"
    on_name = {"resourceType": "Patient", "name": [{"family": "A", "extension": [
        {"url": mothers_family, "valueString": "B"}]}]}
    write, errors = await _write_and_validate(client, on_name)
    assert write.status_code == 422
    assert "not allowed" in errors[0]["diagnostics"]
    on_family = {"resourceType": "Patient", "name": [{"family": "A", "_family": {"extension": [
        {"url": mothers_family, "valueString": "B"}]}}]}
    write, errors = await _write_and_validate(client, on_family)
    assert write.status_code == 201 and errors == []
    birth_time = "http://hl7.org/fhir/StructureDefinition/patient-birthTime"
    wrong_type = {"resourceType": "Patient", "birthDate": "1980-01-01", "_birthDate": {"extension": [
        {"url": birth_time, "valueString": "noon"}]}}
    write, errors = await _write_and_validate(client, wrong_type)
    assert write.status_code == 422
    assert any("valueString" in (e.get("expression") or [""])[0] for e in errors)


async def test_vital_signs_meet_the_core_profile_r4_requires_of_their_code(client: httpx.AsyncClient) -> None:
    temperature = _observation(code={"coding": [{"system": "http://snomed.info/sct", "code": "276885007"}]},
                               subject={"reference": "Patient/1"}, effectiveDateTime="2024-01-01",
                               category=[{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                      "observation-category", "code": "vital-signs"}]}],
                               valueQuantity={"value": 36.6, "unit": "Cel", "system": "http://unitsofmeasure.org",
                                              "code": "Cel"})
    write, errors = await _write_and_validate(client, temperature)
    # bodytemp wants the LOINC code 8310-5 as well; implied profiles run in $validate and on strict writes
    # (KZFHIR_WRITE_VALIDATION=strict) only
    assert write.status_code == 201
    assert any("8310-5" in e["diagnostics"] or "BodyTempCode" in e["diagnostics"] for e in errors), errors
    temperature["code"]["coding"].append({"system": "http://loinc.org", "code": "8310-5"})
    write, errors = await _write_and_validate(client, temperature)
    assert write.status_code == 201 and errors == []


async def test_core_profiles_are_known_when_declared(client: httpx.AsyncClient) -> None:
    declared = _observation(meta={"profile": ["http://hl7.org/fhir/StructureDefinition/bodyweight"]})
    write, errors = await _write_and_validate(client, declared)
    assert write.status_code == 422
    assert not any("not known" in e["diagnostics"] for e in errors)


async def test_a_profile_asked_for_by_name_must_be_known(client: httpx.AsyncClient) -> None:
    r = await client.post("/Patient/$validate?profile=https://nowhere.kz/StructureDefinition/x",
                          json={"resourceType": "Patient", "active": True}, headers=FHIR_JSON)
    assert [e["code"] for e in _errors(r.json())] == ["not-supported"]
    declared = {"resourceType": "Patient", "active": True,
                "meta": {"profile": ["https://nowhere.kz/StructureDefinition/x"]}}
    r = await client.post("/Patient/$validate", json=declared, headers=FHIR_JSON)
    assert _errors(r.json()) == []
    assert any(i["code"] == "not-supported" for i in r.json()["issue"])


async def test_attachment_size_is_the_size_of_the_data(client: httpx.AsyncClient) -> None:
    media = {"resourceType": "Media", "status": "completed", "content": {"contentType": "text/plain",
                                                                       "data": "aGVsbG8=", "size": 100}}
    write, errors = await _write_and_validate(client, media)
    assert errors[0]["expression"] == ["Media.content.size"]
    assert write.status_code == 422  # refused by default writes too (issue 14 §2)
    assert write.json()["issue"][0]["expression"] == ["Media.content.size"]
    media["content"]["size"] = 5
    write, errors = await _write_and_validate(client, media)
    assert write.status_code == 201 and errors == []


async def test_a_strict_server_refuses_on_write_what_validate_finds(tmp_path: Any) -> None:
    """With KZFHIR_WRITE_VALIDATION=strict, writes judge as $validate does (also implied profiles and
    undefined extensions, which a default write keeps)."""
    from fhir_server.api.app import create_app
    from fhir_server.config import Settings
    from tests.conftest import BASE

    settings = Settings(database=tmp_path / "db.sqlite", synchronous_full=False, security_enabled=False,
                        dev_key_path=tmp_path / "dev-jwks.json", write_validation="strict")
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE, timeout=60
    ) as client:
        unknown = {"resourceType": "Patient", "extension": [{"url": "https://vendor.kz/ext/x", "valueString": "a"}]}
        assert (await client.post("/Patient", json=unknown, headers=FHIR_JSON)).status_code == 422
        relative = {"resourceType": "Bundle", "type": "collection", "entry": [
            {"fullUrl": "Patient/p", "resource": {"resourceType": "Patient", "id": "p"}}]}
        assert (await client.post("/Bundle", json=relative, headers=FHIR_JSON)).status_code == 422
