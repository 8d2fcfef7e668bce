"""update: ``PUT [base]/[type]/[id]`` and conditional update ``PUT [base]/[type]?[criteria]``.

FHIR R4 http.html §3.1.0.4: update-as-create with a client id, ``If-Match`` version-aware updates
(412 on mismatch), 400 when the body id is missing or differs from the URL. With security on, the
policy sees both the stored version and the new one (nothing may be moved into or out of someone's
reach); the unit then insists the stored version is still the one checked (409 otherwise).
"""

from __future__ import annotations

import uuid
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
from fhir_server.interactions.search_access import refuse_indirect
from fhir_server.interactions.write import (
    next_version,
    parse_criteria,
    require_resource,
    store_version,
    validate_off_loop,
)
from fhir_server.security.context import RequestContext
from fhir_server.security.enforcement import AccessSession
from fhir_server.storage.protocols import StoredResource, TxView

_UNCHECKED = -1


def check_if_match(current: StoredResource | None, expected: int | None, resource_type: str,
                   resource_id: str) -> None:
    if expected is None:
        return
    if current is None or current.deleted or current.version != expected:
        have = "none" if current is None or current.deleted else str(current.version)
        raise FhirError("precondition_failed",
                        f"If-Match expects version {expected} of {resource_type}/{resource_id}; current is {have}")


def check_unchanged(current: StoredResource | None, checked: int | None) -> None:
    """The version the policy saw must still be the current one when the unit runs."""
    if checked == _UNCHECKED:
        return
    now = None if current is None else current.version
    if now != checked:
        raise FhirError("conflict", "the resource changed while this request was checked; retry it")


async def guard_existing(access: AccessSession, services: Services, action: Action, resource_type: str,
                         resource_id: str) -> int | None:
    """Policy check on the stored version; returns the version checked (None: nothing stored)."""
    if not access.enabled:
        return _UNCHECKED
    current = await services.store.read(resource_type, resource_id)
    if current is None:
        return None
    if not current.deleted:
        await see_stored(access, action, current, action.value)
    return current.version


def put_unit(services: Services, access: AccessSession, resource: dict[str, Any], resource_type: str,
             resource_id: str, expected: int | None, checked: int | None, verdict: Any, ids: set[str]) -> Any:
    """The write unit of an update: returns (stored version, created?)."""

    def unit(view: TxView) -> tuple[StoredResource, bool]:
        current = view.current(resource_type, resource_id)
        check_if_match(current, expected, resource_type, resource_id)
        check_unchanged(current, checked)
        stored = store_version(view, services, resource, resource_type, resource_id, next_version(current), "PUT")
        access.record(AuditTarget("update", resource_type, resource_id, str(stored.version)), verdict, ids)
        access.write_into(view)
        return stored, current is None or current.deleted

    return unit


async def handle(services: Services, ctx: RequestContext, resource_type: str, resource_id: str, body: Any, *,
                 base_url: str, prefer: Prefer, if_match: str | None = None) -> FhirResponse:
    check_type(services, resource_type)
    check_id(resource_id)
    access = session(services, ctx)
    target = AuditTarget("update", resource_type, resource_id)
    await access.start(Action.UPDATE, resource_type, target, instance_level=True)
    resource = require_resource(body, resource_type)
    if "id" not in resource:
        raise FhirError("invalid", "the resource in an update must carry its id", code="required", expression="id")
    if resource["id"] != resource_id:
        raise FhirError("invalid", f"body id {resource['id']!r} does not match the URL id {resource_id!r}",
                        code="invalid", expression="id")
    await validate_off_loop(services, resource, mode="update")
    expected = parse_etag(if_match, "If-Match")
    checked = await guard_existing(access, services, Action.UPDATE, resource_type, resource_id)
    verdict, ids = await access.check(Action.UPDATE, resource, target)
    stored, created = await services.store.transaction(
        put_unit(services, access, resource, resource_type, resource_id, expected, checked, verdict, ids))
    return representation(stored, prefer, 201 if created else 200, base_url, location=created)


async def _conditional_target(services: Services, access: AccessSession, resource_type: str, criteria: Any,
                              body_id: Any) -> tuple[str, list[tuple[str, str]]]:
    """Resolve the target before the unit (so the policy can see it); the unit re-checks the match."""
    matches: list[tuple[str, str]] = await services.store.search_ids(criteria, 2)
    if len(matches) > 1:
        raise FhirError("precondition_failed", f"conditional update criteria matched {len(matches)} resources")
    if matches:
        target = matches[0][1]
        if body_id is not None and body_id != target:
            raise FhirError("invalid", f"body id {body_id!r} differs from the matched resource {target!r}",
                            expression="id")
        return target, matches
    target = body_id if isinstance(body_id, str) else str(uuid.uuid4())
    check_id(target)
    return target, matches


async def handle_conditional(services: Services, ctx: RequestContext, resource_type: str, criteria_text: str,
                             body: Any, *, base_url: str, prefer: Prefer,
                             if_match: str | None = None) -> FhirResponse:
    check_type(services, resource_type)
    access = session(services, ctx)
    target_audit = AuditTarget("update", resource_type, query=criteria_text)
    start = await access.start(Action.UPDATE, resource_type, target_audit)
    resource = require_resource(body, resource_type)
    await validate_off_loop(services, resource, mode="update")
    criteria = parse_criteria(services, resource_type, criteria_text)
    if access.enabled:
        refuse_indirect(criteria, start)
    expected = parse_etag(if_match, "If-Match")
    target, matches = await _conditional_target(services, access, resource_type, criteria, resource.get("id"))
    checked = await guard_existing(access, services, Action.UPDATE, resource_type, target)
    resource = {**resource, "id": target}
    verdict, ids = await access.check(Action.UPDATE, resource, target_audit)
    inner = put_unit(services, access, resource, resource_type, target, expected, checked, verdict, ids)

    def unit(view: TxView) -> tuple[StoredResource, bool]:
        if view.search_ids(criteria, 2) != matches:
            raise FhirError("conflict", "the conditional update's match changed meanwhile; retry it")
        result: tuple[StoredResource, bool] = inner(view)
        return result

    stored, created = await services.store.transaction(unit)
    return representation(stored, prefer, 201 if created else 200, base_url, location=True)
