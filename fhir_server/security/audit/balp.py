"""IHE BALP-style AuditEvents (issue 5 part 3, AC-14, TM-13): the builder, kept apart from sinks.

Every access gets an event: who (the user agent with ``fhirUser``, role and token id), on whose
behalf, from where (client agent with the network address), which server, what (data entity with
version, or the base64 query), which patient, when, the outcome (0 success, 4 refused, 8 server
failure) with the reason, and the purpose of use — ``BTG`` + ``ETREAT`` for break-glass,
``HLEGAL`` for legal exceptions. Direction follows BALP: for reads the client is the
Destination Role ID (110152) and the server the Source Role ID (110153); for queries and writes it
is the other way round. BALP PatientQuery asks for one event per patient in a result set:
``rest_events`` does that.
"""

from __future__ import annotations

import base64
import dataclasses
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fhir_server.security.audit import codes as c
from fhir_server.security.context import RequestContext
from fhir_server.security.fhirtime import to_instant_text, utc_now
from fhir_server.security.policy.decision import Action, Verdict
from fhir_server.security.policy.duties import FLAG_DETAIL as ACCESS_FLAG
from fhir_server.security.refs import BIN_SYSTEM


@dataclass(frozen=True, slots=True)
class AuditSource:
    """The server recording the events (``AuditEvent.source`` and the server agent)."""

    observer: str = "kzfhir"
    site: str | None = None
    server_address: str | None = None


@dataclass(frozen=True, slots=True)
class AuditTarget:
    """What an interaction touched. ``interaction`` is a restful-interaction code (see
    ``interaction_for``); ``query`` is the raw query string of a search, kept verbatim."""

    interaction: str
    resource_type: str | None = None
    resource_id: str | None = None
    version_id: str | None = None
    query: str | None = None
    patient_id: str | None = None
    security_labels: tuple[dict[str, Any], ...] = ()


DEFAULT_SOURCE = AuditSource()


def interaction_for(action: Action, *, level: str = "instance") -> str:
    """restful-interaction code for a policy Action; ``level`` is instance, type or system."""
    if action is Action.SEARCH:
        return "search-system" if level == "system" else "search-type"
    if action is Action.HISTORY:
        return f"history-{level}"
    if action in (Action.OPERATION, Action.EXPORT):
        return "operation"
    return action.value


def _purposes(ctx: RequestContext, verdict: Verdict | None) -> list[str]:
    purposes = [ctx.purpose_of_use] if ctx.purpose_of_use else []
    if verdict is not None and verdict.emergency:
        purposes += ["ETREAT", "BTG"]
    if verdict is not None and verdict.legal_basis:
        purposes.append("HLEGAL")
    return list(dict.fromkeys(purposes))


def _user_agent(ctx: RequestContext, purposes: list[str]) -> dict[str, Any]:
    who = {"reference": ctx.fhir_user} if ctx.fhir_user else {"identifier": {"value": ctx.subject or "unknown"}}
    agent: dict[str, Any] = {
        "type": {"coding": [c.coding(c.PARTICIPATION_TYPE, "IRCP", "information recipient")]},
        "who": who,
        "requestor": True,
    }
    if ctx.role:
        agent["role"] = [{"coding": [c.coding(c.KZ_SECURITY_ROLE, ctx.role)]}]
    if ctx.token_id:
        agent["policy"] = [f"urn:ietf:params:oauth:jti:{ctx.token_id}"]
    if purposes:
        agent["purposeOfUse"] = [{"coding": [c.coding(c.ACT_REASON, code)]} for code in purposes]
    return agent


def _machine_agents(ctx: RequestContext, client_is_source: bool, source: AuditSource) -> list[dict[str, Any]]:
    source_role = c.coding(c.DICOM, "110153", "Source Role ID")
    destination_role = c.coding(c.DICOM, "110152", "Destination Role ID")
    client: dict[str, Any] = {
        "type": {"coding": [source_role if client_is_source else destination_role]},
        "who": {"identifier": {"value": ctx.client_id}} if ctx.client_id else {"display": "unidentified client"},
        "requestor": False,
    }
    if ctx.client_ip:
        client["network"] = {"address": ctx.client_ip, "type": "2"}
    server = {
        "type": {"coding": [destination_role if client_is_source else source_role]},
        "who": {"display": source.observer},
        "requestor": False,
        "network": {"address": source.server_address or source.observer, "type": "1"},
    }
    return [client, server]


def _party_agents(ctx: RequestContext) -> list[dict[str, Any]]:
    agents: list[dict[str, Any]] = []
    if ctx.organization_bin:
        agents.append(
            {
                "type": {"coding": [c.coding(c.ROLE_CLASS, "PROV", "healthcare provider")]},
                "who": {"identifier": {"system": BIN_SYSTEM, "value": ctx.organization_bin}},
                "requestor": False,
            }
        )
    if ctx.on_behalf_of:
        # The principal the user acts for (delegation): the responsible party of the act.
        agents.append(
            {
                "type": {"coding": [c.coding(c.PARTICIPATION_TYPE, "RESP", "responsible party")]},
                "who": {"reference": ctx.on_behalf_of},
                "requestor": False,
            }
        )
    return agents


def _transaction_entity(ctx: RequestContext, verdict: Verdict | None) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "what": {"identifier": {"value": ctx.request_id}},
        "type": c.coding(c.BALP_ENTITY_TYPE, "XrequestId", "X-Request-Id"),
    }
    details = []
    if verdict is not None and verdict.emergency and ctx.break_glass_reason:
        details.append({"type": "break-glass-reason", "valueString": ctx.break_glass_reason})
    if verdict is not None and verdict.legal_basis:
        details.append({"type": "legal-basis", "valueString": verdict.legal_basis})
    if verdict is not None and verdict.allowed:
        # AC-20: access beyond duties, flagged for the auditor (policy/duties.py; listed by $access-flags)
        details += [{"type": ACCESS_FLAG, "valueString": flag} for flag in verdict.flags]
    if details:
        entity["detail"] = details
    return entity


def _target_entities(target: AuditTarget, verdict: Verdict | None) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = []
    if target.resource_type and target.resource_id:
        reference = f"{target.resource_type}/{target.resource_id}"
        if target.version_id:
            reference += f"/_history/{target.version_id}"
        data: dict[str, Any] = {
            "what": {"reference": reference},
            "type": c.coding(c.ENTITY_TYPE, "2", "System Object"),
            "role": c.coding(c.OBJECT_ROLE, "4", "Domain Resource"),
        }
        if target.security_labels:
            data["securityLabel"] = list(target.security_labels)
        entities.append(data)
    if target.query is not None:
        entities.append(
            {
                "type": c.coding(c.ENTITY_TYPE, "2", "System Object"),
                "role": c.coding(c.OBJECT_ROLE, "24", "Query"),
                "description": target.query,
                "query": base64.b64encode(target.query.encode("utf-8")).decode("ascii"),
            }
        )
    if target.patient_id:
        entities.append(
            {
                "what": {"reference": f"Patient/{target.patient_id}"},
                "type": c.coding(c.ENTITY_TYPE, "1", "Person"),
                "role": c.coding(c.OBJECT_ROLE, "1", "Patient"),
            }
        )
    for consent in verdict.consents if verdict is not None else ():
        entities.append({"what": {"reference": consent}, "type": c.coding(c.RESOURCE_TYPES, "Consent")})
    return entities


def _envelope(recorded: float | None, outcome: str, description: str | None, source: AuditSource) -> dict[str, Any]:
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(uuid.uuid4()),
        "recorded": to_instant_text(utc_now() if recorded is None else recorded),
        "outcome": outcome,
        "source": {
            "observer": {"display": source.observer},
            "type": [c.coding(c.SOURCE_TYPE, "4", "Application Server")],
        },
    }
    if source.site:
        event["source"]["site"] = source.site
    if description:
        event["outcomeDesc"] = description
    return event


def rest_event(
    ctx: RequestContext,
    target: AuditTarget,
    verdict: Verdict | None = None,
    *,
    outcome: str | None = None,
    description: str | None = None,
    source: AuditSource = DEFAULT_SOURCE,
    recorded: float | None = None,
) -> dict[str, Any]:
    """One BALP AuditEvent for a REST interaction. Outcome defaults from the verdict: refused
    -> 4 with the verdict's reason, otherwise 0; pass ``outcome=SERIOUS_FAILURE`` for server errors."""
    refused = verdict is not None and not verdict.allowed
    outcome = outcome or (c.MINOR_FAILURE if refused else c.SUCCESS)
    if description is None and refused and verdict is not None:
        description = verdict.reason
    event = _envelope(recorded, outcome, description, source)
    action = c.ACTION_OF.get(target.interaction, "E")
    if outcome == c.SUCCESS:
        stem = c.PROFILE_OF[action]
        event["meta"] = {"profile": [c.BALP_PROFILE + ("Patient" if target.patient_id else "") + stem]}
    event["type"] = c.coding(c.AUDIT_EVENT_TYPE, "rest", "Restful Operation")
    event["subtype"] = [c.coding(c.RESTFUL_INTERACTION, target.interaction)]
    event["action"] = action
    purposes = _purposes(ctx, verdict)
    if purposes:
        event["purposeOfEvent"] = [{"coding": [c.coding(c.ACT_REASON, code)]} for code in purposes]
    client_is_source = action != "R"
    event["agent"] = [_user_agent(ctx, purposes), *_machine_agents(ctx, client_is_source, source), *_party_agents(ctx)]
    event["entity"] = [_transaction_entity(ctx, verdict), *_target_entities(target, verdict)]
    return event


def rest_events(
    ctx: RequestContext, target: AuditTarget, patient_ids: Iterable[str], verdict: Verdict | None = None, **kwargs: Any
) -> list[dict[str, Any]]:
    """One event per patient in the result (BALP PatientQuery); one patient-less event if none."""
    ids = sorted(set(patient_ids))
    if not ids:
        return [rest_event(ctx, target, verdict, **kwargs)]
    return [rest_event(ctx, dataclasses.replace(target, patient_id=pid), verdict, **kwargs) for pid in ids]


def denied_event(ctx: RequestContext, target: AuditTarget, reason: str, **kwargs: Any) -> dict[str, Any]:
    """A refused access (403): outcome 4 with the reason (FHIR security "Access Denied")."""
    return rest_event(ctx, target, Verdict.reject(reason), **kwargs)


def failed_authentication_event(
    reason: str,
    *,
    client_ip: str | None,
    request_id: str,
    source: AuditSource = DEFAULT_SOURCE,
    recorded: float | None = None,
) -> dict[str, Any]:
    """A refused login (401): DICOM User Authentication / Login, outcome 4, no identity."""
    event = _envelope(recorded, c.MINOR_FAILURE, reason, source)
    event["type"] = c.coding(c.DICOM, "110114", "User Authentication")
    event["subtype"] = [c.coding(c.DICOM, "110122", "Login")]
    event["action"] = "E"
    client: dict[str, Any] = {
        "type": {"coding": [c.coding(c.DICOM, "110153", "Source Role ID")]},
        "who": {"display": "unauthenticated client"},
        "requestor": True,
    }
    if client_ip:
        client["network"] = {"address": client_ip, "type": "2"}
    event["agent"] = [client]
    event["entity"] = [_transaction_entity(RequestContext(request_id=request_id), None)]
    return event
