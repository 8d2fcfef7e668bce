"""How one line of the patient's access log is shown (AC-24, TM-18): two views of an AuditEvent.

* ``auditevent`` (default): the AuditEvent itself, reduced to what the patient may see — who, for
  which organisation and on whose behalf, what, when, why (purposes, break-glass reason, legal
  basis), the outcome. The machine agents (client and server with their network addresses) and the
  token id are dropped, as ``access_log_entry`` does (docs/security.md §4). It stays a valid R4
  AuditEvent, so a portal that understands AuditEvent can render it.
* ``compact``: one ``entry`` parameter per line with flat parts (``when``, ``who``, ``why`` ...),
  built from ``access_log_entry``, for simple clients (the e-government cabinet adapter).

When an event names no purpose the request ran under the role's default purpose (docs/security.md
"Roles"); the views show that purpose and say it was assumed.
"""

from __future__ import annotations

from typing import Any

from fhir_server.security.audit import access_log_entry
from fhir_server.security.audit import codes as c
from fhir_server.security.roles import DEFAULT_PURPOSE

_PERSON_AGENTS = frozenset({"IRCP", "PROV", "RESP"})
_ASSUMED = "assumed: the default purpose of the caller's role (the request named none)"
_KEPT = ("resourceType", "id", "type", "subtype", "action", "recorded", "outcome", "outcomeDesc")
_COMPACT_TYPES = {"when": "valueInstant", "role": "valueCode", "action": "valueCode", "why": "valueCode",
                  "emergency": "valueBoolean", "outcome": "valueCode"}


def _role_of(event: dict[str, Any]) -> str | None:
    for agent in event.get("agent", []) or []:
        for concept in agent.get("role", []) or []:
            for coding in concept.get("coding", []) or []:
                if coding.get("system") == c.KZ_SECURITY_ROLE:
                    return str(coding.get("code"))
    return None


def assumed_purpose(event: dict[str, Any]) -> str | None:
    """The role's default purpose when the event records none (policy evaluated with it)."""
    if event.get("purposeOfEvent"):
        return None
    role = _role_of(event)
    return DEFAULT_PURPOSE.get(role) if role else None


def _agent_codes(agent: dict[str, Any]) -> set[str]:
    return {str(coding.get("code")) for coding in (agent.get("type") or {}).get("coding", []) or []}


def _person_agent(agent: dict[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in agent.items() if k not in ("policy", "network", "media")}
    kept.setdefault("requestor", False)
    return kept


def _entity(entity: dict[str, Any]) -> dict[str, Any]:
    # The base64 query is the raw request; its readable ``description`` is what the patient needs.
    return {k: v for k, v in entity.items() if k != "query"}


def patient_view(event: dict[str, Any]) -> dict[str, Any]:
    """The AuditEvent as the patient sees it (still a valid R4 AuditEvent)."""
    view: dict[str, Any] = {k: event[k] for k in _KEPT if k in event}
    purposes = event.get("purposeOfEvent")
    assumed = assumed_purpose(event)
    if assumed:
        purposes = [{"coding": [c.coding(c.ACT_REASON, assumed)], "text": _ASSUMED}]
    if purposes:
        view["purposeOfEvent"] = purposes
    agents = [_person_agent(a) for a in event.get("agent", []) or [] if _agent_codes(a) & _PERSON_AGENTS]
    if not agents:  # AuditEvent.agent is 1..*: name the server when no person took part
        agents = [{"who": {"display": "kzfhir"}, "requestor": False}]
    view["agent"] = agents
    view["source"] = {"observer": (event.get("source") or {}).get("observer") or {"display": "kzfhir"}}
    entities = [_entity(e) for e in event.get("entity", []) or []]
    if entities:
        view["entity"] = entities
    return view


def compact_entry(event: dict[str, Any]) -> dict[str, Any]:
    """One ``Parameters.parameter`` named ``entry`` whose parts are the access-log fields."""
    line = access_log_entry(event)
    assumed = assumed_purpose(event)
    if assumed:
        line["why"] = [assumed]
        line["purposeAssumed"] = True
    parts: list[dict[str, Any]] = []
    for name, value in line.items():
        for item in value if isinstance(value, list) else [value]:
            kind = "valueBoolean" if isinstance(item, bool) else _COMPACT_TYPES.get(name, "valueString")
            parts.append({"name": name, kind: item})
    return {"name": "entry", "part": parts}
