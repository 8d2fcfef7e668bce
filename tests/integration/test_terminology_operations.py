"""Terminology operations over HTTP: $expand, $lookup, $validate-code, $translate (issue 4 §3)."""

from __future__ import annotations

import pytest

# FHIR semantics, not access: the server runs in open mode (security: tests/security_http/).
pytestmark = pytest.mark.open_mode

KZ = "https://fhir.kzfhir.kz"
FHIR_JSON = {"content-type": "application/fhir+json"}


def _param(body: dict, name: str):
    for p in body.get("parameter", []):
        if p["name"] == name:
            return next((v for k, v in p.items() if k.startswith("value")), p.get("part"))
    return None


async def test_expand_kz_value_set_with_paging_and_language(client):
    r = await client.get(f"/ValueSet/$expand?url={KZ}/ValueSet/kz-telecom-channel&count=2&offset=1")
    assert r.status_code == 200, r.text
    expansion = r.json()["expansion"]
    assert expansion["total"] == 4 and expansion["offset"] == 1
    assert len(expansion["contains"]) == 2
    ru = await client.get(f"/ValueSet/$expand?url={KZ}/ValueSet/kz-telecom-channel&displayLanguage=ru")
    assert any(c["code"] == "video" and c["display"] != "Video" for c in ru.json()["expansion"]["contains"])


async def test_expand_with_filter_by_post_parameters(client):
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "url", "valueUri": "http://hl7.org/fhir/ValueSet/administrative-gender"},
        {"name": "filter", "valueString": "fem"}]}
    r = await client.post("/ValueSet/$expand", json=params, headers=FHIR_JSON)
    assert [c["code"] for c in r.json()["expansion"]["contains"]] == ["female"]


async def test_expand_unknown_value_set_is_404(client):
    r = await client.get("/ValueSet/$expand?url=http://example.org/nothing")
    assert r.status_code == 404
    assert r.json()["resourceType"] == "OperationOutcome"


async def test_lookup_gives_kazakh_display(client):
    r = await client.get(f"/CodeSystem/$lookup?system={KZ}/CodeSystem/kz-diagnosis-kind&code=main&displayLanguage=kk")
    assert r.status_code == 200
    assert _param(r.json(), "display")
    missing = await client.get(f"/CodeSystem/$lookup?system={KZ}/CodeSystem/kz-diagnosis-kind&code=nope")
    assert missing.status_code == 404


async def test_validate_code_true_and_false(client):
    vs = f"{KZ}/ValueSet/kz-funding-source"
    ok = await client.get(f"/ValueSet/$validate-code?url={vs}&system={KZ}/CodeSystem/kz-funding-source&code=osms")
    bad = await client.get(f"/ValueSet/$validate-code?url={vs}&system={KZ}/CodeSystem/kz-funding-source&code=x")
    assert _param(ok.json(), "result") is True
    assert _param(bad.json(), "result") is False


async def test_translate_with_concept_map(client):
    r = await client.get(f"/ConceptMap/$translate?system={KZ}/CodeSystem/kz-diagnosis-type&code=final")
    assert r.status_code == 200, r.text
    assert _param(r.json(), "result") is True


async def test_unknown_operation_is_404(client):
    assert (await client.get("/Patient/$no-such-op")).status_code == 404
