"""Bundle.entry.response values for batch and transaction responses (FHIR R4 bundle.html), and the
GET/HEAD entries, which run as the same interactions a direct request would (with the same session)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fhir_server.errors import FhirError, operation_outcome
from fhir_server.i18n import DEFAULT, Language
from fhir_server.i18n.outcome import localised_outcome
from fhir_server.interactions import history, read, search, vread
from fhir_server.interactions.base import FhirResponse, Prefer, etag
from fhir_server.interactions.bundle_entries import Entry
from fhir_server.interactions.plan import WriteOp
from fhir_server.interactions.request import FhirRequest
from fhir_server.jsonio import fragment

REASONS = {200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified", 400: "Bad Request",
           401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           409: "Conflict", 410: "Gone", 412: "Precondition Failed", 413: "Payload Too Large",
           415: "Unsupported Media Type", 422: "Unprocessable Entity", 500: "Internal Server Error",
           501: "Not Implemented"}
_STATUS = {"created": 201, "updated": 200, "found": 200, "deleted": 204, "nothing": 204}


def status_line(status: int) -> str:
    return f"{status} {REASONS.get(status, '')}".strip()


def for_write(op: WriteOp, prefer: Prefer, base_url: str) -> dict[str, Any]:
    """The entry for one executed write."""
    response: dict[str, Any] = {"status": status_line(_STATUS.get(op.outcome, 200))}
    entry: dict[str, Any] = {}
    stored = op.deleted[0] if len(op.deleted) == 1 else op.stored
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


def for_error(exc: FhirError, lang: Language = DEFAULT) -> dict[str, Any]:
    """A failed batch entry: its OperationOutcome in the caller's language (docs/languages.md)."""
    return {"response": {"status": status_line(exc.status), "outcome": localised_outcome(exc.issues, lang)[0]}}


async def run_get(req: FhirRequest, entry: Entry) -> dict[str, Any]:
    """GET/HEAD entries: read, vread, history, search, compartment search and operations."""
    return (await get_entry(req, entry))[0]


async def get_entry(req: FhirRequest, entry: Entry) -> tuple[dict[str, Any], str | None]:
    """A GET/HEAD entry and, when it failed, its reason in English for the audit record (the entry's own
    OperationOutcome is in the caller's language)."""
    try:
        resp = await dispatch_get(req, entry)
    except FhirError as exc:
        return for_error(exc, req.language()), exc.message
    out = for_response(resp, Prefer(), req.base_url)
    if entry.method == "HEAD":
        out.pop("resource", None)
    return out, None


async def dispatch_get(req: FhirRequest, entry: Entry) -> FhirResponse:
    params = parse_qsl(entry.criteria or "", keep_blank_values=True)
    rtype, rid, op = entry.resource_type, entry.resource_id, entry.operation
    if op == "_history" or (op is None and rid is None and rtype is None and entry.url.startswith("_history")):
        return await history.handle(req, rtype, rid, dict(params))
    if rtype and rid and entry.version:
        return await vread.handle(req, rtype, rid, entry.version)
    if rtype and rid and op is None:
        return await read.handle(req, rtype, rid, if_none_match=entry.if_none_match,
                                 if_modified_since=entry.if_modified_since)
    if op is not None and op.startswith("$"):
        from fhir_server.operations.dispatch import run_operation

        level = "instance" if rid else ("type" if rtype else "system")
        return await run_operation(req, level, op[1:], rtype, rid, "GET", params, None)
    compartment = None
    if rtype and rid and op is not None and "/" not in op and req.services.definitions.is_resource_type(op):
        compartment, rtype = (rtype, rid), op  # [base]/Patient/1/Observation: compartment search
    elif op not in (None, "_search"):
        raise FhirError("not_implemented", f"GET {entry.url[:200]} is not supported inside a bundle",
                        code="not-supported")
    params = [(k, v) for k, v in params if k not in ("_format", "_pretty")]
    if rtype == "AuditEvent" and compartment is None and req.access.enabled:
        from fhir_server.interactions import audit_events

        return await audit_events.search(req, params)
    body = await search.handle(req, resource_type=rtype, params=params, compartment=compartment, strict=False)
    return FhirResponse(200, body)
