"""Validation issues: the one value type every validator (structure, profile, terminology) returns.

They become OperationOutcome.issue entries at the HTTP edge (FHIR R4 §3.1.0 OperationOutcome).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Severity = Literal["fatal", "error", "warning", "information"]


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem found in a resource.

    ``code`` is an IssueType code (http://hl7.org/fhir/issue-type): structure, required, value,
    invariant, code-invalid, not-supported, business-rule, processing, ...
    ``expression`` is a FHIRPath to the element, e.g. ``Patient.name[0].given[1]``.
    """

    severity: Severity
    code: str
    diagnostics: str
    expression: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity in ("fatal", "error")

    def to_fhir(self) -> dict[str, Any]:
        out: dict[str, Any] = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            out["expression"] = [self.expression]
        return out


def has_errors(issues: list[Issue]) -> bool:
    return any(i.is_error for i in issues)
