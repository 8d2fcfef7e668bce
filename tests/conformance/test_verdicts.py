"""Per-requirement verdicts and the run's verdict: a requirement passes only when the checks that decide
it ran and passed, and a full run is conformant only when every critical requirement passed."""

from __future__ import annotations

from conformance import CheckResult, Status
from conformance.requirements import CRITICAL, REQUIREMENTS
from conformance.verdicts import Verdict, overall, requirement_verdicts


def _result(check_id: str, status: Status, covers: tuple[str, ...], message: str = "why") -> CheckResult:
    return CheckResult(check_id, "g", f"title {check_id}", covers, status, message)


def _verdict(results: list[CheckResult], req_id: str) -> tuple[Verdict, str]:
    found = next(v for v in requirement_verdicts(results) if v.id == req_id)
    return found.verdict, found.why


def test_ac12_is_not_tested_when_the_access_checks_were_skipped_although_sec02_passed() -> None:
    results = [_result("SEC-02", Status.PASS, ("AC-12",)),
               _result("ACC-01", Status.SKIPPED, ("AC-12",), "no test identities")]
    verdict, why = _verdict(results, "AC-12")
    assert verdict is Verdict.NOT_TESTED
    assert "ACC-01 skipped: no test identities" in why and "ACC-02 not run" in why


def test_a_failed_covering_check_fails_the_requirement_whatever_else_passed() -> None:
    results = [_result("ACC-01", Status.PASS, ("AC-12",)), _result("ACC-04", Status.FAIL, ("AC-12",), "leak")]
    assert _verdict(results, "AC-12") == (Verdict.FAIL, "ACC-04 failed: leak")


def test_requirements_beyond_http_are_not_tested_with_the_reason() -> None:
    verdict, why = _verdict([], "TM-10")
    assert verdict is Verdict.NOT_TESTED and why.startswith("outside the kit's reach: ")


def test_a_requirement_without_deciding_checks_passes_on_any_passing_check_and_lists_warnings() -> None:
    results = [_result("CAP-04", Status.PASS, ("TM-05",)), _result("X-01", Status.WARNING, ("TM-05",))]
    assert _verdict(results, "TM-05") == (Verdict.PASS, "passed: CAP-04, X-01 (warnings: X-01)")


def test_every_requirement_id_of_the_regulations_has_a_verdict() -> None:
    ids = {r.id for r in REQUIREMENTS}
    assert ids >= {f"TM-{i:02d}" for i in range(1, 27)} | {f"AC-{i:02d}" for i in range(1, 28)} | {"MD-B", "MD-D"}
    assert ids >= CRITICAL


def _all_critical(status: Status) -> list[CheckResult]:
    needed = {n for r in REQUIREMENTS if r.id in CRITICAL for n in r.needs}
    return [_result(n, status, tuple(r.id for r in REQUIREMENTS if n in r.needs)) for n in sorted(needed)]


def test_a_full_run_is_conformant_only_when_every_critical_requirement_passed() -> None:
    passing = _all_critical(Status.PASS)
    assert overall(passing, requirement_verdicts(passing), full_run=True, kit_error=None)[0] == 0
    short = [r for r in passing if r.id != "ACC-22"]  # the notifications check did not run
    code, text = overall(short, requirement_verdicts(short), full_run=True, kit_error=None)
    assert code == 1 and text == "NOT conformant: critical requirements not demonstrated: AC-18"
    code, text = overall(short, requirement_verdicts(short), full_run=False, kit_error=None)
    assert code == 0 and text.startswith("partial run")
    assert overall(short, requirement_verdicts(short), full_run=True, kit_error="unreachable")[0] == 2
