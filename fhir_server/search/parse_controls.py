"""Result-control parameters: ``_sort``, ``_count``, ``_total``, ``_summary``, ``_elements``,
``_include`` / ``_revinclude`` and ``_type`` (FHIR R4 search §3.1.1.5–§3.1.1.6)."""

from __future__ import annotations

from typing import cast

from fhir_server.definitions import get_definitions
from fhir_server.search.errors import SearchError
from fhir_server.search.indexer import Indexer
from fhir_server.search.query import IncludeSpec, SortKey, Summary, Total

MAX_COUNT = 1000  # a page never holds more matches than this, whatever _count asks (R4 §3.1.1.5.5)
DEFAULT_COUNT = 50  # the default of settings.default_page_size (docs/configuration.md)
_SORTABLE = frozenset({"string", "token", "date", "number", "quantity", "reference", "uri"})


def configure_paging(default_count: int, max_count: int) -> None:
    """Page sizes from the settings (``default_page_size``, ``max_page_size``), set once at start-up."""
    global DEFAULT_COUNT, MAX_COUNT
    DEFAULT_COUNT, MAX_COUNT = default_count, max_count


def parse_count(raw: str) -> int:
    try:
        count = int(raw)
    except ValueError:
        raise SearchError("_count", f"'{raw}' is not a non-negative integer") from None
    if count < 0:
        raise SearchError("_count", f"'{raw}' is not a non-negative integer")
    return min(count, MAX_COUNT)


def parse_total(raw: str) -> Total:
    if raw not in ("none", "estimate", "accurate"):
        raise SearchError("_total", "must be one of none, estimate, accurate")
    return cast(Total, raw)


def parse_summary(raw: str) -> Summary:
    if raw not in ("true", "text", "data", "count", "false"):
        raise SearchError("_summary", "must be one of true, text, data, count, false")
    return cast(Summary, raw)


def parse_elements(raw: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in raw.split(",") if n.strip())
    if not names:
        raise SearchError("_elements", "needs at least one element name")
    return names


def parse_types(raw: str) -> tuple[str, ...]:
    types = tuple(t.strip() for t in raw.split(",") if t.strip())
    known = get_definitions().resource_types
    for t in types:
        if t not in known:
            raise SearchError("_type", f"'{t}' is not a resource type")
    return types


def sort_key(indexer: Indexer, types: tuple[str, ...], item: str) -> SortKey | None:
    """One ``_sort`` entry (``-`` for descending), or None when the parameter is unknown."""
    descending = item.startswith("-")
    code = item[1:] if descending else item
    if code == "_id":
        return SortKey(code, "token", descending)
    if code == "_lastUpdated":
        return SortKey(code, "date", descending)
    kinds = {d.type for t in types if (d := indexer.searchable(t).get(code)) is not None}
    found = sum(1 for t in types if code in indexer.searchable(t))
    if not types or found != len(types) or len(kinds) != 1:
        return None
    kind = kinds.pop()
    if kind not in _SORTABLE:
        raise SearchError("_sort", f"sorting by the {kind} parameter '{code}' is not supported", code="not-supported")
    return SortKey(code, kind, descending)


def include_spec(indexer: Indexer, name: str, raw: str, types: tuple[str, ...]) -> IncludeSpec | str:
    """An ``_include`` / ``_revinclude`` value, or a message saying why it cannot be used."""
    reverse = name.startswith("_revinclude")
    modifier = name.partition(":")[2]
    if modifier not in ("", "iterate", "recurse"):
        raise SearchError(name, f"unknown modifier ':{modifier}'")
    iterate = modifier in ("iterate", "recurse")  # R3's :recurse is R4's :iterate
    if raw == "*":
        return IncludeSpec("*", "*", None, iterate, reverse)
    parts = raw.split(":")
    if len(parts) not in (2, 3):
        raise SearchError(name, f"'{raw}' is not SourceType:parameter[:TargetType]")
    source, code = parts[0], parts[1]
    target = parts[2] if len(parts) == 3 else None
    known = get_definitions().resource_types
    if source not in known or (target is not None and target not in known):
        raise SearchError(name, f"'{raw}' names an unknown resource type")
    if not reverse and not iterate and types and source not in types:
        return f"'{raw}': {source} is not a searched type"
    if code != "*":
        d = indexer.searchable(source).get(code)
        if d is None or d.type != "reference":
            return f"'{raw}': {code} is not a reference parameter of {source}"
    return IncludeSpec(source, code, target, iterate, reverse)
