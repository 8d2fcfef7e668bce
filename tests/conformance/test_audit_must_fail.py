"""Full certification runs over real HTTP against a server whose audit trail misses accesses (issue 18
"Proof": "a server whose audit log misses accesses (must fail AC-14/AC-24)"). The server enforces consent
on every path; only its record of the accesses has a hole (tests/conformance/variants.py AUDIT_VARIANTS:
changes only, or no refusals). Exactly ACC-20 and ACC-21 fail — the AuditEvents and the patient's access
log are one trail — (and ACC-12, break-glass "allowed and logged", when no read is recorded) and exactly
the requirements they cover: AC-14 and AC-24 among them, so the run is NOT conformant."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance import Status
from fhir_server.api.app import create_app
from tests.conformance.conftest import system_token
from tests.conformance.live import served
from tests.conformance.test_must_fail import SECURED_SKIPS, _covered, clinic, failed_requirements, full_run, with_status
from tests.conformance.variants import AUDIT_VARIANTS, AuditVariant


@pytest.mark.req("AC-14")
@pytest.mark.req("AC-24")
@pytest.mark.parametrize("variant", AUDIT_VARIANTS, ids=[v.broken for v in AUDIT_VARIANTS])
async def test_a_trail_that_misses_accesses_fails_exactly_the_audit_checks(tmp_path: Path,
                                                                           variant: AuditVariant) -> None:
    async with clinic(tmp_path) as config, served(variant.wrap(create_app(config), system_token(tmp_path))) as base:
        report = await full_run(base, tmp_path)
    failed = with_status(report, Status.FAIL)
    assert set(failed) == variant.fails, failed
    assert "have no record in the AuditEvents" in failed["ACC-20"] and variant.shown in failed["ACC-20"]
    assert "have no record in the patient's access log" in failed["ACC-21"]
    assert set(with_status(report, Status.SKIPPED)) == set(SECURED_SKIPS) | variant.skips
    assert with_status(report, Status.WARNING) == {} and with_status(report, Status.ERROR) == {}
    assert report.kit_error is None
    assert failed_requirements(report) == set().union(*(_covered(report, c) for c in variant.fails))
    assert {"AC-14", "AC-24"} <= failed_requirements(report)
    assert report.exit_code == 1 and report.verdict.startswith("NOT conformant")
