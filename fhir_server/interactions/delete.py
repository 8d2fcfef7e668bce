"""delete: ``DELETE [base]/[type]/[id]`` and conditional delete (FHIR R4 http.html §3.1.0.7).

Deletes are logical: a new version marks the resource deleted, a read then gives 410 Gone and the
history keeps every version. With security on, the policy checks the stored version first.
"""

from __future__ import annotations

from typing import Any

from fhir_server.errors import FhirError
from fhir_server.interactions.access import Action, AuditTarget, see_stored, session
from fhir_server.interactions.base import FhirResponse, Services, check_id, check_type, etag
from fhir_server.interactions.search_access import refuse_indirect
from fhir_server.interactions.write import parse_criteria
from fhir_server.security.context import RequestContext
from fhir_server.security.enforcement import AccessSession
from fhir_server.storage.protocols import StoredResource, TxView


def delete_in(view: TxView, resource_type: str, resource_id: str, checked: int | None = None
              ) -> StoredResource | None:
    """Delete inside a unit; None when there was nothing (left) to delete. ``checked``: the version
    the policy saw, which must still be current."""
    current = view.current(resource_type, resource_id)
    if checked is not None and (current is None or current.version != checked):
        raise FhirError("conflict", f"{resource_type}/{resource_id} changed while the delete was checked; retry it")
    if current is None or current.deleted:
        return None
    return view.delete(resource_type, resource_id, current.version + 1, "DELETE")


def _response(deleted: list[StoredResource]) -> FhirResponse:
    # 204 whether or not something existed: the spec allows it and it leaks nothing (§3.1.0.7).
    headers = {"ETag": etag(deleted[0].version)} if len(deleted) == 1 else {}
    return FhirResponse(204, None, headers, deleted[0] if len(deleted) == 1 else None)


async def _check_targets(services: Services, access: AccessSession, targets: list[tuple[str, str]]
                         ) -> list[tuple[str, str, int | None, Any, set[str]]]:
    """Policy check of every stored version about to be deleted."""
    out: list[tuple[str, str, int | None, Any, set[str]]] = []
    for rtype, rid in targets:
        current = await services.store.read(rtype, rid)
        if current is None or current.deleted or not access.enabled:
            out.append((rtype, rid, None, None, set()))
            continue
        verdict, ids = await see_stored(access, Action.DELETE, current, "delete")
        out.append((rtype, rid, current.version, verdict, ids))
    return out


def _delete_unit(access: AccessSession, checked: list[tuple[str, str, int | None, Any, set[str]]]) -> Any:
    def unit(view: TxView) -> list[StoredResource]:
        out = []
        for rtype, rid, version, verdict, ids in checked:
            stored = delete_in(view, rtype, rid, version)
            if stored is not None:
                out.append(stored)
                if verdict is not None:
                    access.record(AuditTarget("delete", rtype, rid, str(stored.version)), verdict, ids)
        access.write_into(view)
        return out

    return unit


async def handle(services: Services, ctx: RequestContext, resource_type: str, resource_id: str) -> FhirResponse:
    check_type(services, resource_type)
    check_id(resource_id)
    access = session(services, ctx)
    await access.start(Action.DELETE, resource_type, AuditTarget("delete", resource_type, resource_id),
                       instance_level=True)
    checked = await _check_targets(services, access, [(resource_type, resource_id)])
    return _response(await services.store.transaction(_delete_unit(access, checked)))


async def handle_conditional(services: Services, ctx: RequestContext, resource_type: str,
                             criteria_text: str) -> FhirResponse:
    check_type(services, resource_type)
    access = session(services, ctx)
    start = await access.start(Action.DELETE, resource_type, AuditTarget("delete", resource_type, query=criteria_text))
    criteria = parse_criteria(services, resource_type, criteria_text)
    if access.enabled:
        refuse_indirect(criteria, start)
    settings = services.settings
    limit = settings.max_conditional_delete if settings.allow_multiple_conditional_delete else 1
    matches: list[tuple[str, str]] = await services.store.search_ids(criteria, limit + 1)
    if len(matches) > limit:
        if limit == 1:
            raise FhirError("precondition_failed", "conditional delete matched more than one resource; "
                            "this server deletes one match only (setting allow_multiple_conditional_delete)")
        raise FhirError("precondition_failed", f"conditional delete matched more than {limit} resources")
    checked = await _check_targets(services, access, matches)
    inner = _delete_unit(access, checked)

    def unit(view: TxView) -> list[StoredResource]:
        if view.search_ids(criteria, limit + 1) != matches:
            raise FhirError("conflict", "the conditional delete's matches changed meanwhile; retry it")
        result: list[StoredResource] = inner(view)
        return result

    return _response(await services.store.transaction(unit))
