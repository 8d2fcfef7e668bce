"""update: ``PUT [base]/[type]/[id]`` and conditional update ``PUT [base]/[type]?[criteria]``.

FHIR R4 http.html §3.1.0.4: update-as-create with a client id, ``If-Match`` version-aware updates
(412 on mismatch), 400 when the body id is missing or differs from the URL.
"""

from __future__ import annotations

import uuid
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
from fhir_server.interactions.write import (
    next_version,
    parse_criteria,
    require_resource,
    store_version,
    validate,
)
from fhir_server.security.context import RequestContext
from fhir_server.storage.protocols import StoredResource, TxView


def _check_if_match(current: StoredResource | None, expected: int | None, resource_type: str,
                    resource_id: str) -> None:
    if expected is None:
        return
    if current is None or current.deleted or current.version != expected:
        have = "none" if current is None or current.deleted else str(current.version)
        raise FhirError("precondition_failed",
                        f"If-Match expects version {expected} of {resource_type}/{resource_id}; current is {have}")


def put_unit(services: Services, resource: dict[str, Any], resource_type: str, resource_id: str,
             expected: int | None, method: str = "PUT") -> Any:
    """The write unit of an update: returns (stored version, created?)."""

    def unit(view: TxView) -> tuple[StoredResource, bool]:
        current = view.current(resource_type, resource_id)
        _check_if_match(current, expected, resource_type, resource_id)
        stored = store_version(view, services, resource, resource_type, resource_id,
                               next_version(current), method)
        return stored, current is None or current.deleted

    return unit


async def handle(services: Services, ctx: RequestContext, resource_type: str, resource_id: str, body: Any, *,
                 base_url: str, prefer: Prefer, if_match: str | None = None) -> FhirResponse:
    check_type(services, resource_type)
    check_id(resource_id)
    resource = require_resource(body, resource_type)
    if "id" not in resource:
        raise FhirError("invalid", "the resource in an update must carry its id", code="required", expression="id")
    if resource["id"] != resource_id:
        raise FhirError("invalid", f"body id {resource['id']!r} does not match the URL id {resource_id!r}",
                        code="invalid", expression="id")
    validate(services, resource, mode="update")
    expected = parse_etag(if_match, "If-Match")
    stored, created = await services.store.transaction(put_unit(services, resource, resource_type,
                                                                resource_id, expected))
    return representation(stored, prefer, 201 if created else 200, base_url, location=created)


def conditional_unit(services: Services, resource: dict[str, Any], resource_type: str, criteria: Any,
                     expected: int | None) -> Any:
    body_id = resource.get("id")

    def unit(view: TxView) -> tuple[StoredResource, bool]:
        matches = view.search_ids(criteria, 2)
        if len(matches) > 1:
            raise FhirError("precondition_failed",
                            f"conditional update criteria matched {len(matches)} resources")
        if matches:
            target = matches[0][1]
            if body_id is not None and body_id != target:
                raise FhirError("invalid", f"body id {body_id!r} differs from the matched resource {target!r}",
                                expression="id")
        else:
            target = body_id if isinstance(body_id, str) else str(uuid.uuid4())
            check_id(target)
        current = view.current(resource_type, target)
        _check_if_match(current, expected, resource_type, target)
        stored = store_version(view, services, resource, resource_type, target, next_version(current), "PUT")
        return stored, current is None or current.deleted

    return unit


async def handle_conditional(services: Services, ctx: RequestContext, resource_type: str, criteria_text: str,
                             body: Any, *, base_url: str, prefer: Prefer,
                             if_match: str | None = None) -> FhirResponse:
    check_type(services, resource_type)
    resource = require_resource(body, resource_type)
    validate(services, resource, mode="update")
    criteria = parse_criteria(services, resource_type, criteria_text)
    expected = parse_etag(if_match, "If-Match")
    stored, created = await services.store.transaction(
        conditional_unit(services, resource, resource_type, criteria, expected))
    return representation(stored, prefer, 201 if created else 200, base_url, location=True)
