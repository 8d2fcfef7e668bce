"""Complaint evidence (AC-21): ``Patient/$access-report`` gives the patient a document of who accessed their data
in a period, signed with the organisation's EDS, that anyone can verify and nobody can alter unnoticed.
Security is on; the keys are the project's test PKI (signing.pki)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from fhir_server.operations.access_report import signer_for
from signing import RevocationPolicy, TrustStore, init_pki
from signing.fhir import verify_fhir_signature
from tests.orders.conftest import OpenWorld


@pytest.mark.req("AC-21")
async def test_the_patient_gets_a_signed_verifiable_report_of_every_access(open_world: OpenWorld, tmp_path: Path):
    pki = tmp_path / "pki"
    init_pki(pki)
    trust = TrustStore.from_directory(pki / "trust", RevocationPolicy(mode="hard"))
    async with open_world(report_signing_key=pki / "organisation.key.pem",
                          report_signing_cert=pki / "organisation.cert.pem") as w:
        patient = w.as_("Patient/p1")
        assert (await w.client.get("/Encounter/e1", headers=w.as_("Practitioner/dr1"))).status_code == 200
        assert (await w.client.get("/Encounter/e1", headers=w.as_("Practitioner/dr2"))).status_code == 200
        assert (await w.client.get("/Patient/p1", headers=w.as_("Patient/p2"))).status_code == 404  # a probe
        await w.store.audit.sync()

        r = await w.client.get("/Patient/p1/$access-report", headers=patient)
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["type"] == "collection" and report["signature"]["sigFormat"] == "application/pkcs7-signature"
        composition = report["entry"][0]["resource"]
        assert composition["subject"] == {"reference": "Patient/p1"}
        lines = [e["resource"] for e in report["entry"][1:]]
        who = {a["who"].get("reference") for line in lines for a in line["agent"] if "who" in a}
        assert {"Practitioner/dr1", "Practitioner/dr2", "Patient/p2"} <= who
        assert any(line["outcome"] == "4" for line in lines)  # the refused probe is evidence too
        assert not any("network" in a for line in lines for a in line["agent"])  # the patient's view
        status = await verify_fhir_signature(report, report["signature"], trust)
        assert status.ok, status
        forged = copy.deepcopy(report)
        forged["entry"] = [e for e in forged["entry"] if "Practitioner/dr2" not in str(e)]
        assert not (await verify_fhir_signature(forged, forged["signature"], trust)).ok

        # a period narrows it; someone else's report is refused as for an unknown patient; the report is audited
        later = await w.client.get("/Patient/p1/$access-report?_since=2099-01-01", headers=patient)
        assert len(later.json()["entry"]) == 1 and later.json()["entry"][0]["resource"]["event"]
        assert (await w.client.get("/Patient/p1/$access-report", headers=w.as_("Patient/p2"))).status_code == 404
        assert (await w.client.get("/Patient/p1/$access-report", headers=w.as_("Practitioner/dr1"))).status_code == 403
        auditor = await w.client.get("/Patient/p1/$access-report", headers=w.auth("auditor", "Practitioner/aud1"))
        assert auditor.status_code == 200
        log = await w.client.get("/Patient/p1/$access-log?_count=100", headers=patient)
        assert "access-report" in log.text
    assert signer_for(w.settings) is not None


@pytest.mark.req("AC-21")
async def test_no_unsigned_report_is_ever_issued(open_world: OpenWorld):
    async with open_world() as w:
        r = await w.client.get("/Patient/p1/$access-report", headers=w.as_("Patient/p1"))
        assert r.status_code == 501 and "signing key" in r.text
