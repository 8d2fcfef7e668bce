"""Test identities the vendor supplies (``--identities FILE``): the file's form, and a run acting as
the vendor's existing test patient and practitioners."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance.consent import access_consent, grantees
from conformance.examples import valid_example
from conformance.identities import load_cast
from fhir_server.security.auth import issue_dev_token
from tests.conformance.bridge import cli
from tests.conformance.conftest import BASE, ORG_BIN, system_token


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_identities_file_gives_references_tokens_headers_and_endpoints(tmp_path: Path) -> None:
    (tmp_path / "doctor.token").write_text("tok-doctor\n", encoding="utf-8")
    cast = load_cast(_write(tmp_path / "ids.json", {
        "patient": {"reference": "Patient/p1", "token": "tok-patient"},
        "consented": {"reference": "Practitioner/d1", "tokenFile": "doctor.token"},
        "unconsented": {"reference": "Practitioner/d2", "token": "tok-other"},
        "emergency": {"reference": "Practitioner/d2", "token": "tok-other", "headers": {"X-Emergency": "yes"}},
        "endpoints": {"accessLog": "Patient/{id}/$my-log"}}))
    assert cast.consented is not None and cast.consented.token == "tok-doctor"
    assert cast.emergency is not None and cast.emergency.request_headers() == {
        "X-Emergency": "yes", "Authorization": "Bearer tok-other"}
    assert cast.auditor is None and cast.endpoints == {"accessLog": "Patient/{id}/$my-log"}
    assert cast.labels() == ["patient Patient/p1", "consented Practitioner/d1", "unconsented Practitioner/d2",
                             "emergency Practitioner/d2"]


@pytest.mark.parametrize(("data", "error"), [
    ({"patient": {"reference": "Patient/p1"}}, "patient needs 'token' or 'tokenFile'"),
    ({"patient": {"reference": "p1", "token": "t"}}, "must be 'Type/id'"),
    ({"patient": {"reference": "Practitioner/p1", "token": "t"}}, "must be a Patient reference"),
    ({"doctor": {"token": "t"}}, "unknown keys ['doctor']"),
])
def test_identities_file_errors_say_what_is_wrong(tmp_path: Path, data: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error.replace("[", r"\[").replace("]", r"\]")):
        load_cast(_write(tmp_path / "ids.json", data))


async def _provision(app: Any, tmp_path: Path) -> dict[str, str]:
    """What the vendor does before the visit: a test patient and two doctors in its system."""
    writer = {"Authorization": f"Bearer {system_token(tmp_path)}"}
    ids = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        for name, example in (("d1", "Practitioner/kz-practitioner-2"), ("d2", "Practitioner/kz-practitioner-3")):
            resource = {k: v for k, v in (valid_example(example) or {}).items() if k != "id"}
            response = await client.post(f"/{resource['resourceType']}", json=resource, headers=writer)
            assert response.status_code == 201, response.text
            ids[name] = f"{resource['resourceType']}/{response.json()['id']}"
        # a person is registered with a request for their consent (AC-04), in one transaction
        patient = {k: v for k, v in (valid_example("Patient/kz-patient-2") or {}).items() if k != "id"}
        template = {k: v for k, v in (valid_example("Consent/kz-consent-1") or {}).items() if k != "sourceReference"}
        urn = "urn:uuid:00000000-0000-4000-8000-000000000002"
        request = {**access_consent(template, urn, grantees({}, ORG_BIN)), "status": "proposed"}
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000002", "resource": patient,
             "request": {"method": "POST", "url": "Patient"}},
            {"resource": request, "request": {"method": "POST", "url": "Consent"}}]}
        response = await client.post("/", json=bundle, headers=writer)
        assert response.status_code == 200, response.text
        ids["patient"] = response.json()["entry"][0]["response"]["location"].split("/_history")[0]
    return ids


@pytest.mark.req("AC-01")
@pytest.mark.req("AC-02")
async def test_run_as_the_vendors_test_identities_from_a_file(secured_server: Any, tmp_path: Path) -> None:
    ids = await _provision(secured_server, tmp_path)
    key = tmp_path / "k.json"

    def token(role: str, who: str | None) -> str:
        return issue_dev_token(role, who, key_path=key)

    identities = _write(tmp_path / "ids.json", {
        "patient": {"reference": ids["patient"], "token": token("patient", ids["patient"])},
        "consented": {"reference": ids["d1"], "token": token("practitioner", ids["d1"])},
        "unconsented": {"reference": ids["d2"], "token": token("practitioner", ids["d2"])},
        "emergency": {"reference": ids["d2"], "token": token("practitioner", ids["d2"]),
                      "headers": {"X-Break-Glass-Reason": "unconscious patient"}},
        "auditor": {"token": token("auditor", None)}})
    report = tmp_path / "r.json"
    code = await cli(["run", "--base", BASE, "--token", system_token(tmp_path), "--identities", str(identities),
                      "--record-wait", "3", "--only", "ACC-02", "--only", "ACC-10", "--only", "ACC-11",
                      "--only", "ACC-12", "--report-json", str(report)], secured_server)
    data = json.loads(report.read_text(encoding="utf-8"))
    assert code == 0, [(r["id"], r["message"]) for r in data["results"]]
    assert f"identity: consented {ids['d1']}" in data["runBy"]["credentials"]
    tokens = [entry["token"] for entry in json.loads(identities.read_text(encoding="utf-8")).values()]
    assert not any(t in report.read_text(encoding="utf-8") for t in tokens)  # labels only, never tokens
    assert {r["id"]: r["status"] for r in data["results"]}["ACC-10"] == "pass"
