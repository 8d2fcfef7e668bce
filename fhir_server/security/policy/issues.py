"""Why a Consent will not do what its author expects: findings to return on create/update/$validate.

The engine never fails on a malformed Consent; it reads it conservatively (see consent.py). These
issues tell the author how it was read, so "my consent does not work" has an answer.
"""

from __future__ import annotations

from typing import Any

from fhir_server.security.fhirtime import instant_range
from fhir_server.security.policy.consent import ACCESS_SCOPES
from fhir_server.security.refs import reference_keys
from fhir_server.validation.issues import Issue


def _period_issues(period: Any, where: str) -> list[Issue]:
    if not isinstance(period, dict):
        return []
    return [
        Issue("error", "value", f"unreadable date {period[key]!r}: this rule never applies", f"{where}.{key}")
        for key in ("start", "end")
        if period.get(key) is not None and instant_range(period[key]) is None
    ]


def _provision_issues(provision: dict[str, Any], where: str, root: bool) -> list[Issue]:
    issues: list[Issue] = []
    if root and provision.get("type"):
        issues.append(
            Issue(
                "warning",
                "business-rule",
                "R4 does not allow provision.type on the root; it is honoured",
                where,
            )
        )
    if not root and provision.get("type") not in ("permit", "deny"):
        issues.append(Issue("error", "required", "nested provision without type is read as deny", f"{where}.type"))
    for index, actor in enumerate(provision.get("actor", []) or []):
        if not reference_keys((actor or {}).get("reference")):
            issues.append(
                Issue("error", "required", "actor names nobody the server can match", f"{where}.actor[{index}]")
            )
    issues += _period_issues(provision.get("period"), f"{where}.period")
    issues += _period_issues(provision.get("dataPeriod"), f"{where}.dataPeriod")
    for index, child in enumerate(provision.get("provision", []) or []):
        if isinstance(child, dict):
            issues += _provision_issues(child, f"{where}.provision[{index}]", root=False)
    return issues


def consent_issues(consent: dict[str, Any]) -> list[Issue]:
    """Findings about how the access policy will read this Consent (empty: read as written)."""
    issues: list[Issue] = []
    scopes = {c.get("code") for c in (consent.get("scope") or {}).get("coding", []) if isinstance(c, dict)}
    if not scopes & ACCESS_SCOPES:
        issues.append(
            Issue(
                "information",
                "informational",
                "only patient-privacy/research consents govern access",
                "Consent.scope",
            )
        )
    if consent.get("status") != "active":
        issues.append(Issue("information", "informational", "only active consents are applied", "Consent.status"))
    provision = consent.get("provision")
    if isinstance(provision, dict):
        issues += _provision_issues(provision, "Consent.provision", root=True)
    return issues
