"""read: ``GET [base]/[type]/[id]`` (FHIR R4 http.html §3.1.0.2), with conditional read (304)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from fhir_server.interactions import audit_events
from fhir_server.interactions.base import FhirResponse, Services, check_id, check_type, parse_etag, version_headers
from fhir_server.interactions.request import FhirRequest
from fhir_server.security.audit.balp import AuditTarget
from fhir_server.security.policy import Action
from fhir_server.security.read_gate import ReadGate, request_id_of
from fhir_server.storage.protocols import StoredResource


def _not_modified_since(stored: StoredResource, if_modified_since: str) -> bool:
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False  # an unparseable date is ignored, as RFC 7232 §3.3 says
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    updated = datetime.strptime(stored.last_updated, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return updated.replace(microsecond=0) <= since


async def handle(req: FhirRequest, resource_type: str, resource_id: str, *, if_none_match: str | None = None,
                 if_modified_since: str | None = None) -> FhirResponse:
    check_type(req.services, resource_type)
    check_id(resource_id)
    if resource_type == "AuditEvent":
        from_chain = await audit_events.read(req, resource_id)
        if from_chain is not None:
            return from_chain
    await req.access.gate(Action.READ, resource_type, AuditTarget("read", resource_type, resource_id), instance=True)
    stored = await req.access.read(resource_type, resource_id)
    headers = version_headers(stored, req.base_url, location=False)
    if if_none_match is not None and parse_etag(if_none_match, "If-None-Match") == stored.version:
        return FhirResponse(304, None, headers, stored)
    if if_modified_since is not None and _not_modified_since(stored, if_modified_since):
        return FhirResponse(304, None, headers, stored)
    return FhirResponse(200, stored.data, headers, stored)


async def compiled(services: Services, headers: Mapping[str, str], client_ip: str | None, resource_type: str,
                   resource_id: str) -> FhirResponse | None:
    """The secured plain read through security/read_gate.py: the same verdict and audit as
    ``handle``, from cached work. None when the read needs the general path (``handle``): unknown
    caller or a refusal (audited there), 404/410, conditional reads, AuditEvents, break-glass."""
    gate: ReadGate = services.read_gate
    if resource_type == "AuditEvent" or "if-none-match" in headers or "if-modified-since" in headers:
        return None
    check_type(services, resource_type)
    check_id(resource_id)
    caller = gate.known_caller(headers, client_ip) or await gate.caller(headers, client_ip)
    if caller is None:
        return None
    stored = await services.store.read(resource_type, resource_id)
    if stored is None or stored.deleted:
        return None
    decision = gate.known_decision(caller, stored)
    patient = stored.patients or ""
    if decision is None:
        decided = await gate.decide(caller, stored)
        if decided is None:
            return None
        decision, patient = decided
    unjournaled = gate.record(decision, patient, request_id_of(headers), stored)
    if unjournaled is not None:
        await gate.commit(decision, unjournaled)
    return FhirResponse(200, stored.data, version_headers(stored, "", location=False), stored)
