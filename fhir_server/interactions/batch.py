"""batch: ``POST [base]`` with a ``batch`` Bundle (FHIR R4 http.html §3.1.0.11).

Each entry is its own interaction and fails on its own, with an OperationOutcome in its response.
Entries run concurrently (a batch has no interdependencies, §3.1.0.11.1), so their writes share the
store's group commits.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fhir_server.errors import FhirError
from fhir_server.interactions import create, delete, entry_response, patch, update
from fhir_server.interactions.base import FhirResponse, Prefer, Services
from fhir_server.interactions.bundle_entries import Entry, parse_entry
from fhir_server.storage.protocols import StoreError


async def _write(services: Services, ctx: Any, e: Entry, base_url: str, prefer: Prefer) -> FhirResponse:
    rtype = e.resource_type
    if rtype is None or e.operation is not None:
        raise FhirError("not_implemented", f"{e.method} {e.url} is not supported in a batch", code="not-supported")
    if e.method == "POST":
        return await create.handle(services, ctx, rtype, e.resource, base_url=base_url, prefer=prefer,
                                   if_none_exist=e.if_none_exist)
    if e.method == "PUT":
        if e.resource_id is None:
            return await update.handle_conditional(services, ctx, rtype, e.criteria or "", e.resource,
                                                   base_url=base_url, prefer=prefer, if_match=e.if_match)
        return await update.handle(services, ctx, rtype, e.resource_id, e.resource, base_url=base_url,
                                   prefer=prefer, if_match=e.if_match)
    if e.method == "PATCH" and e.resource_id is not None:
        return await patch.handle(services, ctx, rtype, e.resource_id, e.patch, base_url=base_url, prefer=prefer,
                                  if_match=e.if_match)
    if e.method == "DELETE":
        if e.resource_id is None:
            return await delete.handle_conditional(services, ctx, rtype, e.criteria or "")
        return await delete.handle(services, ctx, rtype, e.resource_id)
    raise FhirError("invalid", f"{e.method} {e.url} needs an id", code="required")


async def _one(services: Services, ctx: Any, index: int, raw: Any, base_url: str, prefer: Prefer) -> dict[str, Any]:
    try:
        e = parse_entry(services, index, raw, base_url)
        if e.method in ("GET", "HEAD"):
            return await entry_response.run_get(services, ctx, e, base_url)
        resp = await _write(services, ctx, e, base_url, prefer)
        return entry_response.for_response(resp, prefer, base_url)
    except FhirError as exc:
        return entry_response.for_error(exc)
    except StoreError as exc:
        return entry_response.for_error(FhirError(exc.category, exc.message))


async def handle(services: Services, ctx: Any, bundle: dict[str, Any], *, base_url: str,
                 prefer: Prefer) -> list[dict[str, Any]]:
    raw_entries = bundle.get("entry", [])
    return list(await asyncio.gather(*(_one(services, ctx, i, raw, base_url, prefer)
                                       for i, raw in enumerate(raw_entries))))
