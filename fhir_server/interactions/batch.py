"""batch: ``POST [base]`` with a ``batch`` Bundle (FHIR R4 http.html §3.1.0.11).

Each entry is its own interaction and fails on its own, with an OperationOutcome in its response.
Entries run concurrently (a batch has no interdependencies, §3.1.0.11.1), so their writes share the
store's group commits; each has a session of its own on the same caller, so what one entry records
commits with that entry's write (or is lost with its rolled-back unit) and nothing else.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fhir_server.errors import FhirError
from fhir_server.interactions import entry_response
from fhir_server.interactions.bundle_entries import Entry, parse_entry
from fhir_server.interactions.executor import execute
from fhir_server.interactions.plan import WriteOp, create_op, delete_op, patch_op, update_op
from fhir_server.interactions.request import FhirRequest
from fhir_server.security.audit.targets import request_target


async def write_op(req: FhirRequest, e: Entry) -> WriteOp:
    """The WriteOp of a POST, PUT, PATCH or DELETE entry (shared with transactions)."""
    rtype = e.resource_type
    if rtype is None or e.operation is not None:
        raise FhirError("not_implemented", f"entry {e.index}: {e.method} {e.url[:200]} is not supported in a "
                        "batch or transaction", code="not-supported", expression=f"{e.where}.request.url")
    if e.method == "POST":
        return await create_op(req, rtype, e.resource, if_none_exist=e.if_none_exist, full_url=e.full_url,
                               index=e.index)
    if e.method == "PUT":
        return await update_op(req, rtype, e.resource_id, e.resource, criteria=e.criteria, if_match=e.if_match,
                               full_url=e.full_url, index=e.index)
    if e.method == "PATCH":
        return await patch_op(req, rtype, e.resource_id, e.patch, criteria=e.criteria, if_match=e.if_match,
                              full_url=e.full_url, index=e.index)
    return await delete_op(req, rtype, e.resource_id, criteria=e.criteria, index=e.index)


async def _one(req: FhirRequest, index: int, raw: Any) -> dict[str, Any]:
    own = req.fork()
    request = raw.get("request") if isinstance(raw, dict) else None
    method, url = (request.get("method"), request.get("url")) if isinstance(request, dict) else (None, None)
    path, _, query = str(url or "").partition("?")
    target = request_target(str(method or "GET"), path, query)
    reason: str | None = None  # English, for the audit record (docs/languages.md)
    try:
        e = parse_entry(own.services, index, raw, own.base_url)
        if e.method in ("GET", "HEAD"):
            entry, reason = await entry_response.get_entry(own, e)
        else:
            op = await write_op(own, e)
            await execute(own, [op], transaction=False)
            entry = entry_response.for_write(op, own.prefer, own.base_url)
    except FhirError as exc:
        own.access.ensure_recorded(target, exc.status, exc.message)
        entry = entry_response.for_error(exc, own.language())
    status = entry["response"]["status"]
    outcome = entry["response"].get("outcome") or {}
    own.access.ensure_recorded(target, int(status[:3]) if status[:3].isdigit() else 200,
                               reason or outcome.get("issue", [{}])[0].get("diagnostics"))
    await own.access.flush()
    return entry


async def handle(req: FhirRequest, bundle: dict[str, Any]) -> list[dict[str, Any]]:
    raw_entries = bundle.get("entry", [])
    return list(await asyncio.gather(*(_one(req, i, raw) for i, raw in enumerate(raw_entries))))
