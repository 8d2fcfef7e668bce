"""Terminology errors as data: an IssueType code plus a message (house style: errors carry a category).

The HTTP layer maps them to an OperationOutcome once, at the edge: ``not-found`` → 404, ``invalid`` → 400,
``not-supported`` / ``too-costly`` → 422 (FHIR R4 §3.1.0.5.2 and the $expand/$validate-code operations).
"""

from __future__ import annotations

from typing import Any

from fhir_server.definitions.expansion import ExpansionError, ExpansionIssueCode
from fhir_server.validation.issues import Issue

TerminologyIssueCode = ExpansionIssueCode


class TerminologyError(ExpansionError):
    """A terminology operation could not be carried out (an ExpansionError of the one ValueSet expansion)."""

    def to_issue(self, expression: str | None = None) -> Issue:
        return Issue("error", self.code, self.message, expression)

    def to_operation_outcome(self) -> dict[str, Any]:
        return {"resourceType": "OperationOutcome", "issue": [self.to_issue().to_fhir()]}

    def __repr__(self) -> str:
        return f"TerminologyError({self.code!r}, {self.message!r})"
