"""Authentication failures: always HTTP 401 with an OperationOutcome at the edge."""

from __future__ import annotations


class AuthError(Exception):
    """The request could not be authenticated. ``reason`` is safe to show to the caller and to
    record in the failed-authentication AuditEvent (it never contains the token itself)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    #: OperationOutcome.issue.code for the edge (http://hl7.org/fhir/issue-type#login).
    issue_code = "login"
    status_code = 401
