"""The kit tells a consent-enforcing server from one that is not (issue 18), in-process: its verdict on
kzfhir secured holding a clinic's records, and on a server whose audit log misses accesses. kzfhir open,
issue 18's token-only gateway and a tokenless run go over real HTTP in test_live_verdicts.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance import Report, Status, run
from conformance.consent import unverified_claims
from conformance.verdicts import Verdict
from tests.conformance.conftest import BASE, kzfhir, minter, system_token
from tests.conformance.servers import (
    Scope,
    auditing_writes_only,
    paging_before_filtering,
    refusing_practitioners,
    service_account_for,
)

WAIT = 3.0  # seconds for audit records: kzfhir chains journaled reads within 0.2 s
SHORT_WAIT = 1.0  # where the records asserted missing never come, waiting longer proves nothing more


def statuses(report: Report) -> dict[str, Status]:
    return {r.id: r.status for r in report.results}


def requirement(report: Report, req_id: str) -> Verdict:
    return next(v.verdict for v in report.requirements if v.id == req_id)


def message(report: Report, check_id: str) -> str:
    return next(r.message for r in report.results if r.id == check_id)


def no_kit_errors(report: Report) -> None:
    assert [(r.id, r.message) for r in report.results if r.status is Status.ERROR] == []
    assert report.kit_error is None


@pytest.mark.req("AC-01")
@pytest.mark.req("AC-12")
@pytest.mark.req("AC-14")
@pytest.mark.req("AC-24")
async def test_kzfhir_secure_is_conformant(vendor_server: Any, tmp_path: Path) -> None:
    report = await run(BASE, token=system_token(tmp_path), transport=httpx.ASGITransport(app=vendor_server),
                       minter=minter(tmp_path), record_wait=WAIT)
    no_kit_errors(report)
    assert [(r.id, r.message) for r in report.results if r.status is Status.FAIL] == []
    assert [v.id for v in report.requirements if v.critical and v.verdict is not Verdict.PASS] == []
    assert report.exit_code == 0 and report.verdict.startswith("conformant")


@pytest.mark.req("AC-01")
@pytest.mark.req("AC-02")
@pytest.mark.req("AC-10")
@pytest.mark.req("AC-18")
async def test_kzfhir_secure_grants_on_consent_revokes_at_once_and_notifies(tmp_path: Path) -> None:
    async with kzfhir(tmp_path, security_enabled=True) as app:
        report = await run(BASE, token=system_token(tmp_path), transport=httpx.ASGITransport(app=app),
                           minter=minter(tmp_path), record_wait=WAIT,
                           checks=["ACC-02", "ACC-03", "ACC-10", "ACC-11", "ACC-12", "ACC-22"])
    no_kit_errors(report)
    assert {k: v for k, v in statuses(report).items() if k != "CLN-01"} == dict.fromkeys(
        ("ACC-02", "ACC-03", "ACC-10", "ACC-11", "ACC-12", "ACC-22"), Status.PASS)
    assert "recorded by the patient" in message(report, "ACC-10")
    assert "recorded as an emergency in the AuditEvents" in message(report, "ACC-12")
    assert statuses(report)["CLN-01"] is Status.PASS


@pytest.mark.req("AC-14")
@pytest.mark.req("AC-24")
async def test_server_whose_audit_log_misses_reads_fails_ac14_and_ac24(tmp_path: Path) -> None:
    async with kzfhir(tmp_path, security_enabled=True) as app:
        transport = httpx.ASGITransport(app=auditing_writes_only(app))
        report = await run(BASE, token=system_token(tmp_path), transport=transport, minter=minter(tmp_path),
                           record_wait=SHORT_WAIT, checks=["ACC-01", "ACC-10", "ACC-20", "ACC-21"])
    no_kit_errors(report)
    found = statuses(report)
    assert found["ACC-10"] is Status.PASS  # consent itself is enforced: only the log is short
    assert found["ACC-20"] is Status.FAIL and found["ACC-21"] is Status.FAIL
    assert "have no record in the AuditEvents" in message(report, "ACC-20")
    assert "as consented Practitioner/" in message(report, "ACC-21")  # the consented read is not logged
    assert requirement(report, "AC-14") is Verdict.FAIL and requirement(report, "AC-24") is Verdict.FAIL


def _encounters(scope: Scope) -> bool:
    return str(scope["path"]).startswith("/Encounter")


def _writes_by_id(scope: Scope) -> bool:
    return scope["method"] in ("PUT", "PATCH", "DELETE") and str(scope["path"]).startswith("/Observation/")


def _batches(scope: Scope) -> bool:
    return scope["method"] == "POST" and scope["path"] == "/"


def _compartments_and_history(scope: Scope) -> bool:
    path = str(scope["path"])
    compartment = path.startswith("/Patient/") and path.endswith("/Observation")
    return compartment or path in ("/_history", "/Observation/_history")


def _patients(scope: Scope) -> bool:
    """A portal that checks the caller is a patient, then reads clinical data with its own account (by
    role, not by person)."""
    token = next((v[7:].decode("latin-1") for k, v in scope["headers"] if k.lower() == b"authorization"), None)
    clinical = str(scope["path"]).startswith(("/Observation", "/Patient")) and "$" not in str(scope["path"])
    return scope["method"] == "GET" and clinical and unverified_claims(token).get("role") == "patient"


@pytest.mark.req("AC-01")
@pytest.mark.req("AC-12")
@pytest.mark.parametrize(("bypass", "check_id", "shown"), [
    (_encounters, "ACC-14", "served Encounter/"),
    (_writes_by_id, "ACC-09", "after the writes without consent"),
    (_batches, "ACC-09", "batch of PUT and DELETE Observation/"),
    (_compartments_and_history, "ACC-13", "the patient compartment"),
    (_patients, "ACC-15", "as other-patient Patient/"),
], ids=["every-type-but-encounters", "reads-but-not-writes", "writes-but-not-batch-entries",
        "searches-but-not-compartments-or-history",
        "patients-by-role-not-person"])
async def test_a_server_enforcing_consent_on_all_paths_but_one_fails_that_check(
    tmp_path: Path, bypass: Any, check_id: str, shown: str,
) -> None:
    async with kzfhir(tmp_path, security_enabled=True) as app:
        transport = httpx.ASGITransport(app=service_account_for(app, bypass, system_token(tmp_path)))
        report = await run(BASE, token=system_token(tmp_path), transport=transport, minter=minter(tmp_path),
                           record_wait=0.5, checks=["ACC-01", check_id])
    no_kit_errors(report)
    found = statuses(report)
    assert found["ACC-01"] is Status.PASS  # reads of Observations by id are protected ...
    assert found[check_id] is Status.FAIL and shown in message(report, check_id)  # ... the one path is not
    assert requirement(report, "AC-12") is Verdict.FAIL and requirement(report, "AC-01") is Verdict.FAIL


@pytest.mark.req("AC-01")
@pytest.mark.req("AC-02")
@pytest.mark.req("AC-10")
async def test_a_server_refusing_every_practitioner_passes_the_probes_and_still_fails(tmp_path: Path) -> None:
    """Denying everything hides everything: the kit must also see that consent and break-glass grant
    nothing."""
    async with kzfhir(tmp_path, security_enabled=True) as app:
        transport = httpx.ASGITransport(app=refusing_practitioners(app))
        report = await run(BASE, token=system_token(tmp_path), transport=transport,
                           minter=minter(tmp_path), record_wait=0.5,
                           checks=["ACC-01", "ACC-02", "ACC-10", "ACC-12"])
    no_kit_errors(report)
    found = statuses(report)
    assert found["ACC-01"] is Status.PASS and found["ACC-02"] is Status.PASS  # 403 for all: nothing leaks
    assert found["ACC-10"] is Status.FAIL and "grants nothing" in message(report, "ACC-10")
    assert found["ACC-12"] is Status.FAIL
    for req_id in ("AC-01", "AC-02", "AC-10"):
        assert requirement(report, req_id) is Verdict.FAIL, req_id


@pytest.mark.req("AC-12")
async def test_a_server_paging_before_it_filters_fails_acc13(tmp_path: Path) -> None:
    async with kzfhir(tmp_path, security_enabled=True) as app:
        transport = httpx.ASGITransport(app=paging_before_filtering(app, system_token(tmp_path)))
        report = await run(BASE, token=system_token(tmp_path), transport=transport, minter=minter(tmp_path),
                           record_wait=0.5, checks=["ACC-01", "ACC-13"])
    no_kit_errors(report)
    assert statuses(report)["ACC-01"] is Status.PASS
    assert statuses(report)["ACC-13"] is Status.FAIL
    assert message(report, "ACC-13") == "paging: a next page is offered with a hidden match and not without one"
