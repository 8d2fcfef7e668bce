"""The run's result: summary counts, per-requirement verdicts, exit code, and the JSON form (schema
``kzfhir-conformance-report/1``, documented in docs/conformance-kit.md; fields are only ever added,
never renamed, within a version). Markdown and HTML renderings: report_md.py, report_html.py."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from conformance.model import CheckResult, Evidence, Status
from conformance.verdicts import RequirementVerdict, overall, requirement_verdicts

__all__ = ["EXIT_FAIL", "EXIT_KIT_ERROR", "EXIT_PASS", "SCHEMA", "Report"]

SCHEMA = "kzfhir-conformance-report/1"
EXIT_PASS, EXIT_FAIL, EXIT_KIT_ERROR = 0, 1, 2


@dataclass(frozen=True)
class Report:
    base_url: str
    started: datetime
    finished: datetime
    results: tuple[CheckResult, ...] = ()
    kit_error: str | None = None  # the run could not be completed (endpoint unreachable, ...)
    authenticated: bool = False
    server: dict[str, str] = field(default_factory=dict)  # software name/version, fhirVersion
    notes: tuple[str, ...] = ()
    kit_version: str = "unknown"
    full_run: bool = False  # every check selected: a certification run (verdicts.overall)
    credentials: tuple[str, ...] = ()  # who the kit acted as: identity labels and token claims, never tokens
    operator: str = ""  # who ran the kit (--operator), e.g. the regulator's inspector
    comparison: dict[str, Any] | None = None  # against a previous report (compare.py)

    def summary(self) -> dict[str, int]:
        counts = {status.value: 0 for status in Status}
        for result in self.results:
            counts[result.status.value] += 1
        return {"total": len(self.results), **counts}

    @cached_property
    def requirements(self) -> tuple[RequirementVerdict, ...]:
        return requirement_verdicts(self.results)

    @cached_property
    def _overall(self) -> tuple[int, str]:
        return overall(self.results, self.requirements, full_run=self.full_run, kit_error=self.kit_error)

    @property
    def exit_code(self) -> int:
        """0: conformant (a full run) or the checks run passed (a partial run), warnings and skips allowed;
        1: a check failed, or a critical requirement was not demonstrated in a full run; 2: the kit could
        not run to the end (unreachable endpoint, transport failure, kit defect)."""
        return self._overall[0]

    @property
    def verdict(self) -> str:
        return self._overall[1]

    def by_group(self) -> dict[str, list[CheckResult]]:
        groups: dict[str, list[CheckResult]] = {}
        for result in self.results:
            groups.setdefault(result.group, []).append(result)
        return groups

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "kit": {"name": "kzfhir conformance kit", "version": self.kit_version},
            "target": {"baseUrl": self.base_url, "authenticated": self.authenticated, **self.server},
            "runBy": {"operator": self.operator, "credentials": list(self.credentials)},
            "started": self.started.isoformat(),
            "finished": self.finished.isoformat(),
            "durationMs": int((self.finished - self.started).total_seconds() * 1000),
            "fullRun": self.full_run,
            "exitCode": self.exit_code,
            "verdict": self.verdict,
            "kitError": self.kit_error,
            "summary": self.summary(),
            "requirements": [_requirement_dict(v) for v in self.requirements],
            "notes": list(self.notes),
            "results": [_result_dict(r) for r in self.results],
            "comparison": self.comparison,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    def to_markdown(self) -> str:
        from conformance.report_md import render

        return render(self)

    def to_html(self, signer: str | None = None) -> str:
        from conformance.report_html import render

        return render(self, signer)


def _requirement_dict(verdict: RequirementVerdict) -> dict[str, Any]:
    return {"id": verdict.id, "title": verdict.title, "verdict": verdict.verdict.value, "why": verdict.why,
            "checks": list(verdict.checks), "critical": verdict.critical}


def _evidence_dict(evidence: Evidence) -> dict[str, Any]:
    return {"request": evidence.request, "status": evidence.status, "headers": evidence.headers,
            "excerpt": evidence.excerpt, "identity": evidence.identity, "elapsedMs": evidence.elapsed_ms,
            "requestId": evidence.request_id}


def _result_dict(result: CheckResult) -> dict[str, Any]:
    return {
        "id": result.id,
        "group": result.group,
        "title": result.title,
        "covers": list(result.covers),
        "status": result.status.value,
        "message": result.message,
        "durationMs": result.duration_ms,
        "evidence": [_evidence_dict(e) for e in result.evidence],
        "evidenceOmitted": result.evidence_omitted,
    }
