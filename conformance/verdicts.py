"""Per requirement ID a verdict — pass, fail or not tested, with why — from the checks' results, and
the run's overall verdict (what the exit code says)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from conformance.model import CheckResult, Status
from conformance.requirements import CRITICAL, REQUIREMENTS, Requirement

__all__ = ["RequirementVerdict", "Verdict", "overall", "requirement_verdicts"]

_WHY_CHARS = 240


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_TESTED = "not tested"


@dataclass(frozen=True, slots=True)
class RequirementVerdict:
    id: str
    title: str
    verdict: Verdict
    why: str
    checks: tuple[str, ...]  # the checks that cover it, in report order
    critical: bool


def _short(text: str) -> str:
    return text if len(text) <= _WHY_CHARS else text[: _WHY_CHARS - 1] + "…"


def _judge(req: Requirement, covering: list[CheckResult], by_id: dict[str, CheckResult]) -> tuple[Verdict, str]:
    failed = [r for r in covering if r.status is Status.FAIL]
    if failed:
        first = failed[0]
        more = f" (also failed: {', '.join(r.id for r in failed[1:])})" if len(failed) > 1 else ""
        return Verdict.FAIL, f"{first.id} failed: {_short(first.message)}{more}"
    if req.outside and not covering:
        return Verdict.NOT_TESTED, f"outside the kit's reach: {req.outside}"
    unjudged = [n for n in req.needs if n not in by_id or by_id[n].status in (Status.SKIPPED, Status.ERROR)]
    if unjudged:
        reasons = [f"{n} {by_id[n].status.value}: {_short(by_id[n].message)}" if n in by_id else f"{n} not run"
                   for n in unjudged]
        return Verdict.NOT_TESTED, "; ".join(reasons)
    judged = [r for r in covering if r.status in (Status.PASS, Status.WARNING)]
    if not judged:
        reasons = [f"{r.id} {r.status.value}: {_short(r.message)}" for r in covering]
        return Verdict.NOT_TESTED, "; ".join(reasons) or "no check covers it"
    warned = [r.id for r in judged if r.status is Status.WARNING]
    note = f" (warnings: {', '.join(warned)})" if warned else ""
    return Verdict.PASS, f"passed: {', '.join(r.id for r in judged)}{note}"


def requirement_verdicts(results: Sequence[CheckResult]) -> tuple[RequirementVerdict, ...]:
    by_id = {r.id: r for r in results}
    verdicts = []
    for req in REQUIREMENTS:
        covering = [r for r in results if req.id in r.covers]
        verdict, why = _judge(req, covering, by_id)
        verdicts.append(RequirementVerdict(req.id, req.title, verdict, why, tuple(r.id for r in covering),
                                           req.id in CRITICAL))
    return tuple(verdicts)


def overall(results: Sequence[CheckResult], verdicts: Sequence[RequirementVerdict], *, full_run: bool,
            kit_error: str | None) -> tuple[int, str]:
    """(exit code, verdict text). 2: the kit could not finish; 1: a check failed, or (full runs) a
    critical requirement was not demonstrated; 0: otherwise. A partial run (--only) is never a
    certification: its 0 only says that the checks run passed."""
    if kit_error or any(r.status is Status.ERROR for r in results):
        return 2, "incomplete: the kit could not finish the run"
    failed = [r.id for r in results if r.status is Status.FAIL]
    if failed:
        reqs = sorted({v.id for v in verdicts if v.verdict is Verdict.FAIL})
        counted = f"{len(failed)} check{'s' if len(failed) != 1 else ''} failed"
        return 1, f"NOT conformant: {counted} (requirements {', '.join(reqs) or '-'})"
    undemonstrated = [v.id for v in verdicts if v.critical and v.verdict is not Verdict.PASS]
    if not full_run:
        return 0, "partial run: the checks run passed (warnings allowed); not a certification"
    if undemonstrated:
        return 1, f"NOT conformant: critical requirements not demonstrated: {', '.join(undemonstrated)}"
    return 0, "conformant: every critical requirement passed (warnings allowed)"
