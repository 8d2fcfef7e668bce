"""Build the ``searchset`` Bundle of a search (FHIR R4 search §3.1.1.2, bundle.html §2.36.3.x).

Stored resources are embedded as the stored bytes (no re-serialisation) unless ``_summary`` or
``_elements`` subset them. Links carry the parameters the server actually used (ignored ones are
left out, R4 §3.1.1.2) plus an opaque ``_cursor`` for ``next`` / ``previous``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from fhir_server.errors import operation_outcome
from fhir_server.jsonio import fragment, reload
from fhir_server.search.query import SearchMatch, SearchQuery, SearchResult
from fhir_server.search.summary import apply_elements, apply_summary
from fhir_server.validation.issues import Issue


def search_path(base_url: str, resource_type: str | None, compartment: tuple[str, str] | None) -> str:
    """``[base]/Type``, ``[base]`` or ``[base]/Patient/123/Type`` (``*`` for all compartment types)."""
    base = base_url.rstrip("/")
    if compartment is not None:
        return f"{base}/{compartment[0]}/{quote(compartment[1], safe='')}/{resource_type or '*'}"
    return f"{base}/{resource_type}" if resource_type else base


def _link(path: str, params: list[tuple[str, str]], cursor: str | None) -> str:
    items = params + ([("_cursor", cursor)] if cursor else [])
    return f"{path}?{urlencode(items)}" if items else path


def links(path: str, params: list[tuple[str, str]], result: SearchResult, current_cursor: str | None
          ) -> list[dict[str, str]]:
    out = [{"relation": "self", "url": _link(path, params, current_cursor)}]
    if result.next_cursor:
        out.append({"relation": "next", "url": _link(path, params, result.next_cursor)})
    if result.prev_cursor:
        out.append({"relation": "previous", "url": _link(path, params, result.prev_cursor)})
    return out


def _resource(match: SearchMatch, query: SearchQuery) -> Any:
    if query.summary in ("true", "text", "data"):
        return apply_summary(reload(match.data), query.summary)
    if query.elements:
        return apply_elements(reload(match.data), query.elements)
    return fragment(match.data)


def entries(query: SearchQuery, result: SearchResult, base_url: str) -> list[dict[str, Any]]:
    base = base_url.rstrip("/")
    out: list[dict[str, Any]] = [
        {
            "fullUrl": f"{base}/{m.resource_type}/{m.resource_id}",
            "resource": _resource(m, query),
            "search": {"mode": m.mode},
        }
        for m in result.matches
    ]
    warnings = [*query.warnings, *_capped(query, result)]
    if warnings:  # ignored parameters are reported, not silently dropped (issue 3 item 7)
        out.append({"resource": operation_outcome(warnings), "search": {"mode": "outcome"}})
    return out


def _capped(query: SearchQuery, result: SearchResult) -> list[Issue]:
    """The include cap (search_max_included, issue 12) is said, not silent (R4 search §3.1.1.5.4)."""
    if not result.includes_capped:
        return []
    param = "_revinclude" if any(i.reverse for i in query.includes) else "_include"
    return [Issue("warning", "too-costly", f"only the first {query.max_included} included resources are in "
                  "this page (setting search_max_included); ask for smaller pages to see the others", param)]


def searchset(query: SearchQuery, result: SearchResult, *, base_url: str, path: str,
              current_cursor: str | None, link_params: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """The Bundle; links repeat ``link_params`` (default: the parameters the query used)."""
    now = datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": now},
        "type": "searchset",
    }
    if result.total is not None:
        bundle["total"] = result.total
    params = list(query.used_params) if link_params is None else link_params
    bundle["link"] = links(path, params, result, current_cursor)
    found = entries(query, result, base_url)
    if found:
        bundle["entry"] = found
    return bundle
