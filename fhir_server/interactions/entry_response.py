"""Bundle.entry.response values for batch and transaction responses (FHIR R4 bundle.html)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fhir_server.errors import FhirError, operation_outcome
from fhir_server.interactions import history, read, vread
from fhir_server.interactions.base import FhirResponse, Prefer, Services, etag
from fhir_server.interactions.bundle_entries import Entry
from fhir_server.jsonio import fragment
from fhir_server.storage.protocols import StoredResource

REASONS = {200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified", 400: "Bad Request",
           401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           409: "Conflict", 410: "Gone", 412: "Precondition Failed", 413: "Payload Too Large",
           415: "Unsupported Media Type", 422: "Unprocessable Entity", 500: "Internal Server Error"}


def status_line(status: int) -> str:
    return f"{status} {REASONS.get(status, '')}".strip()


def for_write(status: str, stored: StoredResource | None, prefer: Prefer, base_url: str) -> dict[str, Any]:
    response: dict[str, Any] = {"status": status}
    entry: dict[str, Any] = {}
    if stored is not None:
        response["etag"] = etag(stored.version)
        response["lastModified"] = stored.last_updated
        if not stored.deleted:
            response["location"] = f"{stored.type}/{stored.id}/_history/{stored.version}"
            entry["fullUrl"] = f"{base_url}/{stored.type}/{stored.id}"
            if prefer.return_ == "representation" and stored.data is not None:
                entry["resource"] = fragment(stored.data)
    if prefer.return_ == "OperationOutcome":
        response["outcome"] = operation_outcome([])
    entry["response"] = response
    return entry


def for_response(resp: FhirResponse, prefer: Prefer, base_url: str) -> dict[str, Any]:
    """The entry for the result of a single interaction run on behalf of a batch entry."""
    entry: dict[str, Any] = {}
    response: dict[str, Any] = {"status": status_line(resp.status)}
    if "Location" in resp.headers:
        response["location"] = resp.headers["Location"].removeprefix(base_url + "/")
    if "ETag" in resp.headers:
        response["etag"] = resp.headers["ETag"]
    if resp.stored is not None:
        response["lastModified"] = resp.stored.last_updated
        if not resp.stored.deleted:
            entry["fullUrl"] = f"{base_url}/{resp.stored.type}/{resp.stored.id}"
    if resp.outcome is not None:
        response["outcome"] = resp.outcome
    elif resp.body is not None and prefer.return_ != "minimal":
        entry["resource"] = fragment(resp.body)
    entry["response"] = response
    return entry


def for_error(exc: FhirError) -> dict[str, Any]:
    return {"response": {"status": status_line(exc.status), "outcome": exc.outcome()}}


async def run_get(services: Services, ctx: Any, entry: Entry, base_url: str) -> dict[str, Any]:
    """GET/HEAD entries: read, vread, history and search."""
    try:
        resp = await dispatch_get(services, ctx, entry, base_url)
    except FhirError as exc:
        return for_error(exc)
    out = for_response(resp, Prefer(), base_url)
    if entry.method == "HEAD":
        out.pop("resource", None)
    return out


async def dispatch_get(services: Services, ctx: Any, entry: Entry, base_url: str) -> FhirResponse:
    params = dict(parse_qsl(entry.criteria or "", keep_blank_values=True))
    rtype, rid, op = entry.resource_type, entry.resource_id, entry.operation
    if op == "_history" or (op is None and rid is None and rtype is None and entry.url.startswith("_history")):
        return await history.handle(services, ctx, rtype, rid, params, base_url=base_url)
    if rtype and rid and entry.version:
        return await vread.handle(services, ctx, rtype, rid, entry.version, base_url=base_url)
    if rtype and rid and op is None:
        return await read.handle(services, ctx, rtype, rid, base_url=base_url, if_none_match=entry.if_none_match,
                                 if_modified_since=entry.if_modified_since)
    if op is None or op == "_search":
        from fhir_server.interactions import search

        body = await search.handle(services.store, resource_type=rtype,
                                   params=parse_qsl(entry.criteria or "", keep_blank_values=True),
                                   base_url=base_url, compartment=None, strict=False)
        return FhirResponse(200, body)
    raise FhirError("not_implemented", f"GET {entry.url} is not supported inside a bundle", code="not-supported")


