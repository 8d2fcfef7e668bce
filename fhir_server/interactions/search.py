"""The search interaction: type-level, system-level and compartment search, by GET or POST
``_search`` (FHIR R4 http.html §3.1.0.10, search.html §3.1.1)."""

from __future__ import annotations

from urllib.parse import urlencode

from fhir_server.interactions.request import FhirRequest
from fhir_server.interactions.search_access import refuse_counting, refuse_indirect
from fhir_server.interactions.search_bundle import search_path, searchset
from fhir_server.jsonio import dumps
from fhir_server.search import parse_search
from fhir_server.security.audit.balp import AuditTarget
from fhir_server.security.policy import Action


async def handle(req: FhirRequest, *, resource_type: str | None, params: list[tuple[str, str]],
                 compartment: tuple[str, str] | None, strict: bool) -> bytes:
    """The searchset Bundle as JSON bytes. Raises ``SearchError`` (a FhirError) for bad requests:
    unparseable values always, unknown parameters under ``Prefer: handling=strict``. The type-level
    gate runs first and every returned resource passes the policy (security/paging.py)."""
    target = AuditTarget("search-type" if resource_type else "search-system", resource_type,
                         query=urlencode(params))
    start = await req.access.gate(Action.SEARCH, resource_type, target)
    query = parse_search(resource_type, params, strict=strict, compartment=compartment, base_url=req.base_url)
    refuse_counting(query, start, req.access.enabled)
    refuse_indirect(query, start, req.access.enabled)
    result = await req.access.search(query, target, start)
    current = next((v for k, v in params if k == "_cursor"), None)
    path = search_path(req.base_url, resource_type, compartment)
    return dumps(searchset(query, result, base_url=req.base_url, path=path, current_cursor=current))
