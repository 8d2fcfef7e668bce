"""Running an operation (``$name``) at system, type or instance level: one path for the HTTP routes and
for operation entries of a batch, so every operation passes the same gate (issue 10 §1)."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from fhir_server.interactions.base import FhirResponse, check_id, check_type
from fhir_server.interactions.request import FhirRequest
from fhir_server.operations import load_all
from fhir_server.operations.registry import OperationCall, find
from fhir_server.security.audit.balp import AuditTarget
from fhir_server.security.policy import Action

load_all()
import_module("fhir_server.subscriptions.operations")  # Subscription $status / $events (issue 15)
import_module("fhir_server.telemed.consultation")  # Encounter $consultation-start/-join/-end (issue 19)


async def run_operation(req: FhirRequest, level: str, name: str, resource_type: str | None,
                        resource_id: str | None, method: str, query: list[tuple[str, str]], body: Any,
                        extra: dict[str, Any] | None = None) -> FhirResponse:
    """Find the handler, pass the policy's type-level gate for the operation (so none can escape the
    policy), then run it; handlers reach stored data through ``call.access`` only."""
    if resource_type is not None:
        check_type(req.services, resource_type)
    if resource_id is not None:
        check_id(resource_id)
    handler = find(level, resource_type, name)
    start = await req.access.gate(Action.OPERATION, resource_type,
                                  AuditTarget("operation", resource_type, resource_id, query=f"${name}"),
                                  operation=name, instance=resource_id is not None)
    call = OperationCall(req, name, resource_type, resource_id, method, query, body, extra or {}, start)
    return await handler(call)
