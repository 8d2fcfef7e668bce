"""delete: ``DELETE [base]/[type]/[id]`` and conditional delete (FHIR R4 http.html §3.1.0.7).

Deletes are logical: a new version marks the resource deleted, a read then gives 410 Gone and the
history keeps every version.
"""

from __future__ import annotations

from typing import Any

from fhir_server.errors import FhirError
from fhir_server.interactions.base import FhirResponse, Services, check_id, check_type, etag
from fhir_server.interactions.write import parse_criteria
from fhir_server.security.context import RequestContext
from fhir_server.storage.protocols import StoredResource, TxView


def delete_in(view: TxView, resource_type: str, resource_id: str) -> StoredResource | None:
    """Delete inside a unit; None when there was nothing (left) to delete."""
    current = view.current(resource_type, resource_id)
    if current is None or current.deleted:
        return None
    return view.delete(resource_type, resource_id, current.version + 1, "DELETE")


def _response(deleted: list[StoredResource]) -> FhirResponse:
    # 204 whether or not something existed: the spec allows it and it leaks nothing (§3.1.0.7).
    headers = {"ETag": etag(deleted[0].version)} if len(deleted) == 1 else {}
    return FhirResponse(204, None, headers, deleted[0] if len(deleted) == 1 else None)


async def handle(services: Services, ctx: RequestContext, resource_type: str, resource_id: str) -> FhirResponse:
    check_type(services, resource_type)
    check_id(resource_id)
    stored = await services.store.transaction(lambda view: delete_in(view, resource_type, resource_id))
    return _response([stored] if stored else [])


def conditional_unit(services: Services, resource_type: str, criteria: Any) -> Any:
    settings = services.settings
    limit = settings.max_conditional_delete if settings.allow_multiple_conditional_delete else 1

    def unit(view: TxView) -> list[StoredResource]:
        matches = view.search_ids(criteria, limit + 1)
        if len(matches) > limit:
            if limit == 1:
                raise FhirError("precondition_failed", "conditional delete matched more than one resource; "
                                "this server deletes one match only (setting allow_multiple_conditional_delete)")
            raise FhirError("precondition_failed", f"conditional delete matched more than {limit} resources")
        out = []
        for rtype, rid in matches:
            stored = delete_in(view, rtype, rid)
            if stored is not None:
                out.append(stored)
        return out

    return unit


async def handle_conditional(services: Services, ctx: RequestContext, resource_type: str,
                             criteria_text: str) -> FhirResponse:
    check_type(services, resource_type)
    criteria = parse_criteria(services, resource_type, criteria_text)
    deleted = await services.store.transaction(conditional_unit(services, resource_type, criteria))
    return _response(deleted)
