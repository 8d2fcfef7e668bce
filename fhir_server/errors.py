"""Errors are data with a category (house style §8, after Blaze's anomalies).

Interactions raise :class:`FhirError`; exactly one handler in ``api/errors.py`` turns it into an HTTP
status and an OperationOutcome.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fhir_server.validation.issues import Issue

# category -> HTTP status (FHIR R4 http.html §3.1.0.x status codes per interaction)
STATUS_BY_CATEGORY: dict[str, int] = {
    "invalid": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "not_acceptable": 406,
    "conflict": 409,
    "gone": 410,
    "precondition_failed": 412,
    "too_large": 413,
    "unsupported_media_type": 415,
    "unprocessable": 422,
    "too_many_requests": 429,
    "fault": 500,
    "not_implemented": 501,
    "bad_gateway": 502,
    "unavailable": 503,
}

# category -> default IssueType code (http://hl7.org/fhir/issue-type)
ISSUE_CODE_BY_CATEGORY: dict[str, str] = {
    "invalid": "invalid",
    "unauthorized": "login",
    "forbidden": "forbidden",
    "not_found": "not-found",
    "method_not_allowed": "not-supported",
    "not_acceptable": "not-supported",
    "conflict": "conflict",
    "gone": "deleted",
    "precondition_failed": "conflict",
    "too_large": "too-costly",
    "unsupported_media_type": "not-supported",
    "unprocessable": "processing",
    "too_many_requests": "throttled",
    "fault": "exception",
    "not_implemented": "not-supported",
    "bad_gateway": "transient",
    "unavailable": "transient",
}


class FhirError(Exception):
    """An error with a category, one or more issues, and optional extra response headers."""

    def __init__(
        self,
        category: str,
        message: str,
        *,
        code: str | None = None,
        expression: str | None = None,
        issues: Iterable[Issue] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        if category not in STATUS_BY_CATEGORY:
            raise ValueError(f"unknown error category {category!r}")
        self.category = category
        self.message = message
        given = list(issues or [])
        if not given:
            given = [Issue("error", code or ISSUE_CODE_BY_CATEGORY[category], message, expression)]
        self.issues: list[Issue] = given
        self.headers = headers or {}

    @property
    def status(self) -> int:
        return STATUS_BY_CATEGORY[self.category]

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


def operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    out = [i.to_fhir() for i in issues]
    if not out:
        out = [{"severity": "information", "code": "informational", "diagnostics": "All OK"}]
    return {"resourceType": "OperationOutcome", "issue": out}
