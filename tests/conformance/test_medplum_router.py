"""The kit against Medplum's own FHIR router (issue 18 "Proof": an independent FHIR server with no KZ support,
"e.g. a Medplum router in memory"): ``@medplum/fhir-router`` over its MemoryRepository in a node process on
loopback (tests/conformance/medplum.py), holding a clinic's plain-R4 records, certified by the
``kzfhir conformance run`` CLI as a regulator runs it. The report is clear and non-conformant: it names what
the router lacks (no access control, no audit trail, no KZ rules), what it does right (R4 REST) and what the
kit could not test, with no kit error and no crash."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance.cli import main
from fhir_server.security.auth import issue_dev_token
from tests.conformance.medplum import medplum_router, unavailable

WHY_NOT = unavailable()
pytestmark = pytest.mark.skipif(WHY_NOT is not None, reason=WHY_NOT or "")
FHIR_JSON = {"content-type": "application/fhir+json"}
ACCESS = ("ACC-01", "ACC-02", "ACC-03", "ACC-04", "ACC-05", "ACC-08", "ACC-09", "ACC-10", "ACC-11", "ACC-12",
          "ACC-13", "ACC-14", "ACC-15", "ACC-20", "ACC-21", "ACC-22")


def _hold_a_clinics_records(base: str) -> str:
    """What such a server holds: plain R4, a local record number instead of an IIN, no KZ extensions; the
    Patient's id."""
    with httpx.Client(base_url=base, headers=FHIR_JSON, timeout=30) as client:
        patient = client.post("/Patient", json={
            "resourceType": "Patient", "identifier": [{"system": "urn:clinic:mrn", "value": "1"}],
            "name": [{"family": "Doe", "given": ["Jane"]}], "gender": "female", "birthDate": "1980-01-01"})
        assert patient.status_code == 201, patient.text
        pid = str(patient.json()["id"])
        assert client.post("/Organization", json={"resourceType": "Organization", "name": "Clinic"}).status_code == 201
        visit = client.post("/Appointment", json={
            "resourceType": "Appointment", "status": "proposed",  # R4 app-3: no start needed
            "participant": [{"actor": {"reference": f"Patient/{pid}"}, "status": "accepted"}]})
        assert visit.status_code == 201, visit.text
    return pid


@pytest.mark.req("AC-12")
@pytest.mark.req("MD-B")
def test_medplums_router_gets_a_clear_non_conformant_report(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "k.json"
    (tmp_path / "writer.token").write_text(issue_dev_token("system", None, key_path=key), encoding="utf-8")
    with medplum_router(tmp_path / "peer") as base:
        patient = _hold_a_clinics_records(base)
        code = main(["run", "--base", base, "--token-file", str(tmp_path / "writer.token"), "--dev-key", str(key),
                     "--record-wait", "1", "--operator", "suite", "--report-json", str(tmp_path / "r.json"),
                     "--report-html", str(tmp_path / "r.html")])
    out = capsys.readouterr().out
    report: dict[str, Any] = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    found = {r["id"]: r for r in report["results"]}
    verdicts = {r["id"]: r["verdict"] for r in report["requirements"]}

    assert code == 1 and report["verdict"].startswith("NOT conformant") and "NOT conformant" in out
    assert report.get("kitError") is None
    assert [(r["id"], r["message"]) for r in report["results"] if r["status"] == "error"] == []
    assert report["target"]["software"].startswith("kzfhir peer: @medplum/fhir-router")

    # what it does right: plain R4 REST
    for check_id in ("CAP-02", "CAP-03", "REST-01", "REST-02", "REST-03", "REST-06", "REST-08", "REST-09", "TX-01"):
        assert found[check_id]["status"] == "pass", (check_id, found[check_id]["message"])
    # no access control at all: open to anyone, and every access check fails
    assert found["SEC-02"]["status"] == "fail" and "the endpoint is open" in found["SEC-02"]["message"]
    assert {c: found[c]["status"] for c in ACCESS} == dict.fromkeys(ACCESS, "fail")
    assert "have no record in the AuditEvents" in found["ACC-20"]["message"]
    for check_id in ("ACC-06", "ACC-07"):  # $everything and $export: not offered, said so
        assert found[check_id]["status"] == "skipped" and "not offered" in found[check_id]["message"]
    # no KZ rules: invalid KZ content is accepted, and the clinic's own records break the KZ profiles
    invalid = [r for r in report["results"] if "KZ-20" <= r["id"] < "KZ-40"]
    assert invalid and all(r["status"] == "fail" and "does not declare the KZ profile" in r["message"]
                           for r in invalid)
    assert found["VD-03"]["status"] == "fail" and f"Patient/{patient}" in found["VD-03"]["message"]
    assert "MD-B 2" in found["VD-21"]["message"] and "MD-B 4" in found["VD-21"]["message"]
    # and what the kit saw of its transactions: the valid entry stayed when another was refused
    assert found["TX-02"]["status"] == "fail" and "not atomic" in found["TX-02"]["message"]

    for requirement in ("AC-01", "AC-02", "AC-10", "AC-12", "AC-14", "AC-24", "TM-01", "TM-04", "MD-B", "MD-D"):
        assert verdicts[requirement] == "fail", requirement
    assert verdicts["TM-10"] == "not tested"  # outside an HTTP client's reach, and said so
    assert found["CLN-01"]["status"] == "pass"  # the kit removed what it created
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "NOT conformant" in html and "<script" not in html and "medplum" in html
