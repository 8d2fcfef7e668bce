"""``$validate`` at type and instance level (FHIR R4 resource-operation-validate, issue 4 §5).

Always answers 200 with an OperationOutcome listing every issue (error, warning, information) with
its FHIRPath expression; 4xx only when the operation itself cannot run. It runs the write path's own
validators (``Services.extra_validators``), so it refuses what a write refuses (issue 14 §2): the base R4
structure, the declared and mandatory profiles plus the ``profile`` parameter with every invariant, a Bundle's
signature (``signatures/validator.py``) and the other write rules.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fhir_server.errors import FhirError, operation_outcome
from fhir_server.interactions.base import FhirResponse, Services
from fhir_server.jsonio import dumps, reload
from fhir_server.operations.registry import OperationCall, operation
from fhir_server.security.policy import Action
from fhir_server.validation.issues import Issue
from fhir_server.validation.on_write import merge

MODES = ("create", "update", "delete")


def _parameters(body: Any) -> tuple[dict[str, Any] | None, str | None, str | None]:
    """(resource, mode, profile) from a Parameters body, or the body itself as the resource."""
    if not isinstance(body, dict):
        raise FhirError("invalid", "the $validate body must be a resource or a Parameters resource")
    if body.get("resourceType") != "Parameters":
        return body, None, None
    resource = mode = profile = None
    for p in body.get("parameter", []):
        name = p.get("name") if isinstance(p, dict) else None
        if name == "resource":
            resource = p.get("resource")
        elif name == "mode":
            mode = p.get("valueCode") or p.get("valueString")
        elif name == "profile":
            profile = p.get("valueUri") or p.get("valueCanonical") or p.get("valueString")
    return resource, mode, profile


async def _check(services: Services, resource: dict[str, Any], mode: str, profile: str | None) -> list[Issue]:
    """The write path's validation (interactions/write.py ``validate``), judged strictly: every validator a
    write runs, the profile validator with the ``profile`` parameter and every invariant."""
    issues = services.validator.validate(resource)
    if any(i.is_error for i in issues):  # the validators after it assume a structurally sound resource
        return merge(issues)
    validators = list(services.extra_validators)
    if services.profiles is not None and services.profiles not in validators:
        validators.insert(0, services.profiles)
    for extra in validators:
        if extra is services.profiles:
            profiles = services.profiles.policy.profiles_for(resource)
            if profile:
                profiles = [*profiles, profile]
            issues += services.profiles.validate(resource, profiles, level="strict")
        elif getattr(extra, "blocking", False):
            # it waits on a worker (signature verification: crypto, CRL/OCSP): not on the event loop
            issues += await asyncio.to_thread(extra, resource, mode)
        else:
            issues += extra(resource, mode)
    return merge(issues)


def _mode_issues(mode: str, resource: dict[str, Any], resource_id: str | None) -> list[Issue]:
    if mode == "update":
        if "id" not in resource:
            return [Issue("error", "required", "mode update: the resource must carry an id", "id")]
        if resource_id is not None and resource["id"] != resource_id:
            return [Issue("error", "invalid", "mode update: the id differs from the URL", "id")]
    return []


@operation("validate", levels=("type", "instance"))
async def validate_operation(call: OperationCall) -> FhirResponse:
    assert call.resource_type is not None
    params = {k: v for k, v in call.query}
    stored = None
    if call.resource_id is not None and (call.body is None or _parameters(call.body)[0] is None):
        # validating the stored resource discloses what it holds: it is a read of it (404 when hidden)
        stored = reload((await call.access.read(call.resource_type, call.resource_id, action=Action.OPERATION,
                                                 interaction="operation")).data or b"{}")
    return await handle(call.services, call.resource_type, call.resource_id, call.body, params, pretty=call.pretty,
                        stored=stored)


async def handle(services: Services, resource_type: str, resource_id: str | None, body: Any,
                 params: dict[str, str], *, pretty: bool = False, stored: dict[str, Any] | None = None
                 ) -> FhirResponse:
    resource, mode, profile = _parameters(body) if body is not None else (None, None, None)
    mode = mode or params.get("mode") or ("update" if resource_id else "create")
    profile = profile or params.get("profile")
    if mode not in MODES:
        raise FhirError("invalid", f"mode must be one of {', '.join(MODES)}", code="value", expression="mode")
    if resource is None and resource_id is not None:
        if stored is None:
            raise FhirError("not_found", f"{resource_type}/{resource_id} is not known")
        resource = stored
    if mode == "delete":
        issues = [Issue("information", "informational", "no rule of this server forbids deleting this resource")]
    elif not isinstance(resource, dict):
        raise FhirError("invalid", "$validate needs a resource (the body, or a 'resource' parameter)")
    elif resource.get("resourceType") != resource_type:
        issues = [Issue("error", "invalid", f"resourceType {resource.get('resourceType')!r} is not {resource_type}",
                        "resourceType")]
    else:
        issues = _mode_issues(mode, resource, resource_id) + await _check(services, resource, mode, profile)
    return FhirResponse(200, dumps(operation_outcome(issues), pretty=pretty))
