"""The patient's view of the audit trail (AC-24, TM-18): ``Patient/{id}/$access-log`` entries.

A patient sees who touched their data, for which organisation, what was done to what, when and
why — including the break-glass reason — and refused attempts too. They do not see the caller's
network address, token id or the server's internals.
"""

from __future__ import annotations

from typing import Any

from fhir_server.security.audit import codes as c

_OUTCOME = {c.SUCCESS: "success", c.MINOR_FAILURE: "refused", c.SERIOUS_FAILURE: "failed", c.MAJOR_FAILURE: "failed"}


def _codes(concepts: Any, system: str) -> list[str]:
    return [
        coding["code"]
        for concept in concepts or []
        for coding in (concept or {}).get("coding", [])
        if coding.get("system") == system and isinstance(coding.get("code"), str)
    ]


def _agent(event: dict[str, Any], system: str, code: str) -> dict[str, Any] | None:
    for agent in event.get("agent", []) or []:
        if code in _codes([agent.get("type")], system):
            return dict(agent)
    return None


def _who(agent: dict[str, Any] | None) -> str | None:
    if agent is None:
        return None
    who = agent.get("who") or {}
    return who.get("reference") or (who.get("identifier") or {}).get("value") or who.get("display")


def _details(event: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for entity in event.get("entity", []) or []:
        for detail in entity.get("detail", []) or []:
            if isinstance(detail.get("valueString"), str):
                found[str(detail.get("type"))] = detail["valueString"]
    return found


def _what(event: dict[str, Any]) -> list[str]:
    items = []
    for entity in event.get("entity", []) or []:
        role = (entity.get("role") or {}).get("code")
        if role == "4":
            items.append((entity.get("what") or {}).get("reference"))
        elif role == "24":
            items.append(f"search: {entity.get('description', '')}")
    return [item for item in items if item]


def access_log_entry(audit_event: dict[str, Any]) -> dict[str, Any]:
    """One line of the patient's access log, built from a BALP AuditEvent."""
    user = _agent(audit_event, c.PARTICIPATION_TYPE, "IRCP")
    organization = _agent(audit_event, c.ROLE_CLASS, "PROV")
    principal = _agent(audit_event, c.PARTICIPATION_TYPE, "RESP")
    purposes = _codes(audit_event.get("purposeOfEvent"), c.ACT_REASON)
    details = _details(audit_event)
    outcome = _OUTCOME.get(str(audit_event.get("outcome")), "failed")
    entry: dict[str, Any] = {
        "id": audit_event.get("id"),
        "when": audit_event.get("recorded"),
        "who": _who(user),
        "role": next(iter(_codes((user or {}).get("role"), c.KZ_SECURITY_ROLE)), None),
        "organization": _who(organization),
        "onBehalfOf": _who(principal),
        "action": next(iter(_codes([{"coding": audit_event.get("subtype", [])}], c.RESTFUL_INTERACTION)), None),
        "what": _what(audit_event),
        "why": purposes,
        "emergency": "BTG" in purposes,
        "outcome": outcome,
    }
    if "break-glass-reason" in details:
        entry["breakGlassReason"] = details["break-glass-reason"]
    if "legal-basis" in details:
        entry["legalBasis"] = details["legal-basis"]
    if outcome != "success" and audit_event.get("outcomeDesc"):
        entry["reason"] = audit_event["outcomeDesc"]
    return {key: value for key, value in entry.items() if value not in (None, [])}
