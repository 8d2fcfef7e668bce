"""The search interaction: type-level, system-level and compartment search, by GET or POST
``_search`` (FHIR R4 http.html §3.1.0.10 "search", search.html §3.1.1)."""

from __future__ import annotations

from typing import Any

from fhir_server.interactions.search_bundle import search_path, searchset
from fhir_server.jsonio import dumps
from fhir_server.search import parse_search


async def handle(
    store: Any,
    *,
    resource_type: str | None,
    params: list[tuple[str, str]],
    base_url: str,
    compartment: tuple[str, str] | None,
    strict: bool,
) -> bytes:
    """The searchset Bundle as JSON bytes. Raises ``SearchError`` (a FhirError) for bad requests:
    unparseable values always, unknown parameters under ``Prefer: handling=strict``."""
    query = parse_search(resource_type, params, strict=strict, compartment=compartment, base_url=base_url)
    result = await store.search(query)
    current = next((v for k, v in params if k == "_cursor"), None)
    path = search_path(base_url, resource_type, compartment)
    return dumps(searchset(query, result, base_url=base_url, path=path, current_cursor=current))
