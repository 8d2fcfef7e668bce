"""What search supports, for the CapabilityStatement and the conformance docs (issue 3 item 8)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_server.definitions import get_definitions
from fhir_server.search.indexer import get_indexer


@dataclass(frozen=True, slots=True)
class UnsupportedParam:
    code: str
    url: str
    resource_types: tuple[str, ...]
    reason: str


def capability_search_params(resource_type: str) -> list[dict[str, Any]]:
    """``CapabilityStatement.rest.resource.searchParam`` entries: every searchable parameter of a type."""
    out = []
    for code, d in get_indexer().searchable(resource_type).items():
        entry: dict[str, Any] = {"name": code, "definition": d.url, "type": d.type}
        if d.description:
            entry["documentation"] = d.description.split("\n", 1)[0].strip()
        out.append(entry)
    return out


def unsupported_params() -> list[UnsupportedParam]:
    """Every (parameter, resource type) the server cannot search, with the reason, grouped by URL."""
    indexer = get_indexer()
    for resource_type in sorted(get_definitions().resource_types):
        indexer.plans(resource_type)
    grouped: dict[tuple[str, str], list[str]] = {}
    for (resource_type, code), reason in indexer.unsupported.items():
        d = indexer.registry.get(resource_type, code)
        url = d.url if d is not None else ""
        grouped.setdefault((url, reason), []).append(resource_type)
    out = []
    for (url, reason), types in sorted(grouped.items()):
        d = indexer.registry.by_url.get(url)
        out.append(UnsupportedParam(d.code if d else "", url, tuple(sorted(types)), reason))
    return out
