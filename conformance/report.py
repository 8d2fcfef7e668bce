"""The run's result: summary counts, exit code, and the JSON form (schema ``kzfhir-conformance-report/1``,
documented in docs/conformance-kit.md; fields are only ever added, never renamed, within a version)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from conformance.model import CheckResult, Evidence, Status

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

    def summary(self) -> dict[str, int]:
        counts = {status.value: 0 for status in Status}
        for result in self.results:
            counts[result.status.value] += 1
        return {"total": len(self.results), **counts}

    @property
    def exit_code(self) -> int:
        """0: everything passed (warnings and skips allowed); 1: a check failed; 2: the kit could not
        run to the end (unreachable endpoint, transport failure, kit defect)."""
        if self.kit_error or any(r.status is Status.ERROR for r in self.results):
            return EXIT_KIT_ERROR
        return EXIT_FAIL if any(r.status is Status.FAIL for r in self.results) else EXIT_PASS

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
            "started": self.started.isoformat(),
            "finished": self.finished.isoformat(),
            "durationMs": int((self.finished - self.started).total_seconds() * 1000),
            "exitCode": self.exit_code,
            "kitError": self.kit_error,
            "summary": self.summary(),
            "notes": list(self.notes),
            "results": [_result_dict(r) for r in self.results],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    def to_markdown(self) -> str:
        from conformance.report_md import render

        return render(self)


def _evidence_dict(evidence: Evidence) -> dict[str, Any]:
    return {"request": evidence.request, "status": evidence.status, "headers": evidence.headers,
            "excerpt": evidence.excerpt}


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
