"""The search interaction: type-level, system-level and compartment search, by GET or POST
``_search`` (FHIR R4 http.html §3.1.0.10 "search", search.html §3.1.1)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fhir_server.interactions.search_access import guard_result, refuse_counting, refuse_indirect
from fhir_server.interactions.search_bundle import search_path, searchset
from fhir_server.jsonio import dumps
from fhir_server.search import parse_search
from fhir_server.security.audit.balp import AuditTarget
from fhir_server.security.enforcement import AccessSession
from fhir_server.security.policy import Action


async def handle(
    store: Any,
    *,
    resource_type: str | None,
    params: list[tuple[str, str]],
    base_url: str,
    compartment: tuple[str, str] | None,
    strict: bool,
    access: AccessSession | None = None,
) -> bytes:
    """The searchset Bundle as JSON bytes. Raises ``SearchError`` (a FhirError) for bad requests:
    unparseable values always, unknown parameters under ``Prefer: handling=strict``. With an access
    session, the type-level gate runs first and every returned resource passes the policy."""
    target = AuditTarget("search-type" if resource_type else "search-system", resource_type,
                         query=urlencode(params))
    start = None
    if access is not None and access.enabled:
        start = await access.start(Action.SEARCH, resource_type, target)
    query = parse_search(resource_type, params, strict=strict, compartment=compartment, base_url=base_url)
    if access is not None and start is not None:
        refuse_counting(query, start)
        refuse_indirect(query, start)
    result = await store.search(query)
    if access is not None and start is not None:
        result = await guard_result(access, start, result, target)
        await access.flush()
    current = next((v for k, v in params if k == "_cursor"), None)
    path = search_path(base_url, resource_type, compartment)
    return dumps(searchset(query, result, base_url=base_url, path=path, current_cursor=current))
