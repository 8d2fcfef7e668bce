"""create: ``POST [base]/[type]`` (FHIR R4 http.html §3.1.0.8), conditional with ``If-None-Exist``."""

from __future__ import annotations

import uuid
from typing import Any

from fhir_server.errors import FhirError
from fhir_server.interactions.access import Action, AuditTarget, see_stored, session
from fhir_server.interactions.base import FhirResponse, Prefer, Services, check_type, representation
from fhir_server.interactions.search_access import refuse_indirect
from fhir_server.interactions.write import parse_criteria, require_resource, store_version, validate_off_loop
from fhir_server.security.context import RequestContext
from fhir_server.storage.protocols import StoredResource, TxView


async def handle(services: Services, ctx: RequestContext, resource_type: str, body: Any, *, base_url: str,
                 prefer: Prefer, if_none_exist: str | None = None) -> FhirResponse:
    check_type(services, resource_type)
    access = session(services, ctx)
    target = AuditTarget("create", resource_type)
    start = await access.start(Action.CREATE, resource_type, target)
    resource = require_resource(body, resource_type)
    await validate_off_loop(services, resource)
    criteria = parse_criteria(services, resource_type, if_none_exist) if if_none_exist else None
    if access.enabled:
        refuse_indirect(criteria, start)
    verdict, ids = await access.check(Action.CREATE, resource, target)
    new_id = str(uuid.uuid4())  # the server assigns the id; one in the body is ignored (§3.1.0.8)

    def unit(view: TxView) -> tuple[StoredResource, bool]:
        if criteria is not None:
            matches = view.search_ids(criteria, 2)
            if len(matches) > 1:
                raise FhirError("precondition_failed",
                                f"If-None-Exist matched {len(matches)} resources; it must match at most one")
            if matches:
                existing = view.current(*matches[0])
                assert existing is not None
                return existing, False
        stored = store_version(view, services, resource, resource_type, new_id, 1, "POST")
        access.record(AuditTarget("create", resource_type, new_id, "1"), verdict, ids)
        access.write_into(view)
        return stored, True

    stored, created = await services.store.transaction(unit)
    if not created and access.enabled:
        # An existing match is handed back: that is a read of it (§3.1.0.8.1 conditional create).
        seen, seen_ids = await see_stored(access, Action.READ, stored, "read")
        access.record(AuditTarget("read", stored.type, stored.id, str(stored.version)), seen, seen_ids)
        await access.flush()
    return representation(stored, prefer, 201 if created else 200, base_url, location=True)
