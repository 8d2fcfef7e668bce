"""history at instance, type and system level (FHIR R4 http.html §3.1.0.9).

Parameters: ``_count``, ``_since``, ``_at``; pages are linked with ``next`` cursors over the write
sequence, so concurrent writes never shift entries between pages.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fhir_server.errors import FhirError
from fhir_server.i18n import msg
from fhir_server.interactions.base import FhirResponse, Services, check_id, check_type, etag, http_date
from fhir_server.interactions.dates import parse_range, stamp
from fhir_server.interactions.request import FhirRequest
from fhir_server.jsonio import dumps, fragment
from fhir_server.search.cursor import seal, unseal
from fhir_server.security.audit.balp import AuditTarget
from fhir_server.security.policy import Action, total_allowed
from fhir_server.storage.protocols import HistoryPage, HistoryQuery, StoredResource

_KNOWN = {"_count", "_since", "_at", "_cursor", "_format", "_pretty"}


def _count(value: str | None, services: Services) -> int:
    if value is None:
        return services.settings.default_page_size
    if not (value.isascii() and value.isdigit()):
        raise FhirError("invalid", f"_count must be a non-negative integer, got {value!r}", code="value",
                        expression="_count")
    return min(int(value), services.settings.max_page_size)


def _open_cursor(token: str | None) -> str:
    """The position in a sealed ``_cursor`` (``<seq>``, or ``p<seq>`` backwards): write sequence numbers
    are not shown to clients, as their gaps would count versions the policy hid."""
    if not token:
        return ""
    try:
        position = unseal(token).decode("ascii")
    except (ValueError, UnicodeDecodeError) as exc:
        raise FhirError("invalid", "_cursor is not a cursor this server issued (or it expired)", code="value",
                        expression="_cursor") from exc
    if not (position.removeprefix("p").isascii() and position.removeprefix("p").isdigit()):
        raise FhirError("invalid", "_cursor is not a cursor this server issued", code="value", expression="_cursor")
    return position


def _query(params: dict[str, str], services: Services, resource_type: str | None,
           resource_id: str | None) -> HistoryQuery:
    unknown = [k for k in params if k not in _KNOWN]
    if unknown:
        raise FhirError("invalid", msg("history.unknown_parameters", names=", ".join(sorted(unknown))),
                        code="not-supported")
    since = stamp(parse_range(params["_since"], "_since")[0]) if "_since" in params else None
    at_start = at_end = None
    if "_at" in params:
        low, high = parse_range(params["_at"], "_at")
        at_start, at_end = stamp(low), stamp(high)
    cursor = _open_cursor(params.get("_cursor"))
    backwards = cursor.startswith("p")
    seq = int(cursor.removeprefix("p")) if cursor else None
    return HistoryQuery(resource_type, resource_id, since, at_start, at_end, _count(params.get("_count"), services),
                        None if backwards else seq, seq if backwards else None)


def _entry(stored: StoredResource, base_url: str) -> dict[str, Any]:
    url = f"{stored.type}/{stored.id}"
    entry: dict[str, Any] = {"fullUrl": f"{base_url}/{url}"}
    if stored.data is not None:
        entry["resource"] = fragment(stored.data)
    method = stored.method
    entry["request"] = {"method": method, "url": stored.type if method == "POST" else url}
    status = "201 Created" if stored.version == 1 and method in ("POST", "PUT") else (
        "204 No Content" if stored.deleted else "200 OK")
    entry["response"] = {"status": status, "etag": etag(stored.version),
                         "lastModified": stored.last_updated}
    return entry


def _bundle(page: HistoryPage, entries: list[StoredResource], base_url: str, path: str, params: dict[str, str],
            with_total: bool) -> dict[str, Any]:
    own = {k: v for k, v in params.items() if k != "_cursor"}
    links = [{"relation": "self", "url": f"{base_url}/{path}" + (f"?{urlencode(params)}" if params else "")}]
    for relation, position in (("next", page.next_cursor), ("previous", page.previous_cursor)):
        if position is not None:
            token = seal(f"{'p' if relation == 'previous' else ''}{position}".encode())
            links.append({"relation": relation, "url": f"{base_url}/{path}?{urlencode({**own, '_cursor': token})}"})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "history"}
    if with_total:
        bundle["total"] = page.total
    bundle["link"] = links
    bundle["entry"] = [_entry(s, base_url) for s in entries]
    return bundle


async def handle(req: FhirRequest, resource_type: str | None, resource_id: str | None,
                 params: dict[str, str]) -> FhirResponse:
    services = req.services
    if resource_type is not None:
        check_type(services, resource_type)
    level = "instance" if resource_id else ("type" if resource_type else "system")
    target = AuditTarget(f"history-{level}", resource_type, resource_id)
    start = await req.access.gate(Action.HISTORY, resource_type, target, instance=resource_id is not None)
    if resource_id is not None:
        check_id(resource_id)
        assert resource_type is not None
        await _require_visible(req, resource_type, resource_id)
    query = _query(params, services, resource_type, resource_id)
    page, entries = await req.access.history(query, start, target)  # records what the page disclosed
    path = "/".join(p for p in (resource_type, resource_id, "_history") if p)
    headers = {}
    if entries:
        headers["Last-Modified"] = http_date(entries[0].last_updated)
    # Bundle.total only when no per-resource filtering applies: it must not reveal hidden versions
    with_total = not req.access.enabled or total_allowed(start)
    return FhirResponse(200, dumps(_bundle(page, entries, req.base_url, path, params, with_total), pretty=req.pretty),
                        headers)


async def _require_visible(req: FhirRequest, resource_type: str, resource_id: str) -> None:
    """Instance history of a resource the caller may not see answers like an unknown id (404); of a
    deleted one, as long as the caller could see what was deleted."""
    try:
        await req.access.read(resource_type, resource_id, action=Action.HISTORY, interaction="history-instance",
                              record=False)
    except FhirError as exc:
        if exc.status != 410:
            raise
