"""patch: ``PATCH [base]/[type]/[id]`` with a JSON Patch body (FHIR R4 http.html §3.1.0.6)."""

from __future__ import annotations

from typing import Any

from fhir_server.errors import FhirError
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
from fhir_server.storage.protocols import StoredResource, TxView


def patch_unit(services: Services, resource_type: str, resource_id: str, patch: Any,
               expected: int | None) -> Any:
    def unit(view: TxView) -> StoredResource:
        current = view.current(resource_type, resource_id)
        if current is None:
            raise FhirError("not_found", f"{resource_type}/{resource_id} is not known")
        if current.deleted or current.data is None:
            raise FhirError("gone", f"{resource_type}/{resource_id} was deleted")
        if expected is not None and current.version != expected:
            raise FhirError("precondition_failed",
                            f"If-Match expects version {expected}; current is {current.version}")
        patched = apply_patch(reload(current.data), patch)
        if not isinstance(patched, dict) or patched.get("resourceType") != resource_type \
                or patched.get("id") != resource_id:
            raise FhirError("unprocessable", "a patch must not change resourceType or id", code="processing")
        validate(services, patched, mode="update")
        return store_version(view, services, patched, resource_type, resource_id, current.version + 1, "PATCH")

    return unit


async def handle(services: Services, ctx: RequestContext, resource_type: str, resource_id: str, patch: Any, *,
                 base_url: str, prefer: Prefer, if_match: str | None = None) -> FhirResponse:
    check_type(services, resource_type)
    check_id(resource_id)
    expected = parse_etag(if_match, "If-Match")
    stored = await services.store.transaction(patch_unit(services, resource_type, resource_id, patch, expected))
    return representation(stored, prefer, 200, base_url, location=False)
