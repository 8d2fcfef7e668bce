"""Assertions used inside checks: they raise CheckFailed / CheckSkipped with a message fit for a report."""

from __future__ import annotations

from typing import Any

import httpx

from conformance.http import FhirClient, excerpt, json_body
from conformance.model import CheckFailed, CheckSkipped, KitError

__all__ = ["diagnostics", "expect_resource", "expect_status", "is_operation_outcome", "refusal_reason"]


def diagnostics(response: httpx.Response) -> str:
    """What the server said: the OperationOutcome's issues, else a short excerpt of the body."""
    body = json_body(response)
    if body and body.get("resourceType") == "OperationOutcome":
        texts = [str(i.get("diagnostics") or i.get("details", {}).get("text") or i.get("code"))
                 for i in body.get("issue", []) if isinstance(i, dict)]
        return excerpt("; ".join(texts), 240)
    return excerpt(response.text, 160) or "(empty body)"


def is_operation_outcome(response: httpx.Response) -> bool:
    """An error answer in FHIR's own shape (R4 http.html#Status-Codes: OperationOutcome on errors)."""
    body = json_body(response)
    issues = body.get("issue") if body else None
    return bool(body and body.get("resourceType") == "OperationOutcome" and isinstance(issues, list)
                and issues)


def refusal_reason(client: FhirClient, response: httpx.Response, doing: str) -> Exception | None:
    """401 without a token and 403 are not the server's fault but the kit's credentials: skip, saying why."""
    if response.status_code == 401 and not client.authenticated:
        return CheckSkipped(f"{doing}: the endpoint requires authentication (401); run the kit with --token")
    if response.status_code == 401:
        return KitError(f"{doing}: the server rejected the kit's token (401; expired or for another "
                        f"audience?): {diagnostics(response)}")
    if response.status_code == 403:
        return CheckSkipped(f"{doing}: refused for this token (403): {diagnostics(response)}")
    return None


def expect_status(client: FhirClient, response: httpx.Response, *codes: int, doing: str) -> None:
    if response.status_code in codes:
        return
    credential_problem = refusal_reason(client, response, doing)
    if credential_problem is not None:
        raise credential_problem
    wanted = " or ".join(str(c) for c in codes)
    raise CheckFailed(f"{doing}: expected HTTP {wanted}, got {response.status_code}: {diagnostics(response)}")


def expect_resource(response: httpx.Response, resource_type: str, *, doing: str) -> dict[str, Any]:
    body = json_body(response)
    if body is None or body.get("resourceType") != resource_type:
        found = body.get("resourceType") if body else "no JSON object"
        raise CheckFailed(f"{doing}: expected a {resource_type}, got {found}")
    return body
