"""patch: ``PATCH [base]/[type]/[id]`` with a JSON Patch body (FHIR R4 http.html §3.1.0.6).

The patch is applied to the current version before the write unit, the result validated and, with
security on, checked by the policy like an update (stored and new version); the unit then stores it
only if the version it was applied to is still current (409 otherwise, 412 under ``If-Match``).
"""

from __future__ import annotations

from typing import Any

from fhir_server.errors import FhirError
from fhir_server.interactions.access import Action, AuditTarget, see_stored, session
from fhir_server.interactions.base import (
    FhirResponse,
    Prefer,
    Services,
    check_id,
    check_type,
    parse_etag,
    representation,
)
from fhir_server.interactions.jsonpatch import apply_patch
from fhir_server.interactions.write import store_version, validate
from fhir_server.jsonio import reload
from fhir_server.security.context import RequestContext
from fhir_server.security.enforcement import AccessSession
from fhir_server.storage.protocols import StoredResource, TxView


def patched_resource(services: Services, current: StoredResource | None, resource_type: str, resource_id: str,
                     patch: Any, expected: int | None) -> dict[str, Any]:
    if current is None:
        raise FhirError("not_found", f"{resource_type}/{resource_id} is not known")
    if current.deleted or current.data is None:
        raise FhirError("gone", f"{resource_type}/{resource_id} was deleted")
    if expected is not None and current.version != expected:
        raise FhirError("precondition_failed", f"If-Match expects version {expected}; current is {current.version}")
    patched = apply_patch(reload(current.data), patch)
    if not isinstance(patched, dict) or patched.get("resourceType") != resource_type \
            or patched.get("id") != resource_id:
        raise FhirError("unprocessable", "a patch must not change resourceType or id", code="processing")
    validate(services, patched, mode="update")
    return patched


def store_patched(view: TxView, services: Services, access: AccessSession | None, patched: dict[str, Any],
                  base: StoredResource, verdict: Any, ids: set[str], expected: int | None) -> StoredResource:
    current = view.current(base.type, base.id)
    if current is None or current.version != base.version:
        category = "precondition_failed" if expected is not None else "conflict"
        raise FhirError(category, f"{base.type}/{base.id} changed while the patch was applied; retry it")
    stored = store_version(view, services, patched, base.type, base.id, base.version + 1, "PATCH")
    if access is not None:
        access.record(AuditTarget("patch", base.type, base.id, str(stored.version)), verdict, ids)
        access.write_into(view)
    return stored


async def handle(services: Services, ctx: RequestContext, resource_type: str, resource_id: str, patch: Any, *,
                 base_url: str, prefer: Prefer, if_match: str | None = None) -> FhirResponse:
    check_type(services, resource_type)
    check_id(resource_id)
    access = session(services, ctx)
    target = AuditTarget("patch", resource_type, resource_id)
    await access.start(Action.PATCH, resource_type, target, instance_level=True)
    expected = parse_etag(if_match, "If-Match")
    current = await services.store.read(resource_type, resource_id)
    patched = patched_resource(services, current, resource_type, resource_id, patch, expected)
    assert current is not None
    if access.enabled:
        await see_stored(access, Action.PATCH, current, "patch")
    verdict, ids = await access.check(Action.PATCH, patched, target)
    stored = await services.store.transaction(
        lambda view: store_patched(view, services, access, patched, current, verdict, ids, expected))
    return representation(stored, prefer, 200, base_url, location=False)
