"""Code sets for the token modifiers ``:in``, ``:not-in``, ``:above`` and ``:below``
(FHIR R4 search §3.1.1.4.5 token modifiers).

ValueSets and CodeSystems come from the R4 core package, then from the server's own data through a
``lookup(resource_type, url)`` callback the backend provides. Expansion is the one evaluation of
ValueSet.compose (``fhir_server.definitions.expansion``: enumerated concepts, whole code systems, filters,
imported value sets, include parts intersected, excludes); a ValueSet that cannot be evaluated but carries a
stored ``expansion`` is searched by that. Subsumption follows the CodeSystem's concept hierarchy. Anything else
(e.g. SNOMED CT expressions) cannot be expanded here and the search is answered with 400.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fhir_server.definitions.codesystem import CodeSystemIndex
from fhir_server.definitions.expansion import ExpansionError, core_source, enumerable, evaluate, stored_expansion

Lookup = Callable[[str, str], dict[str, Any] | None]
Pairs = frozenset[tuple[str, str]]


class _LookupSource:
    """The R4 core first, then the server's stored ValueSets and CodeSystems (indexed once per search)."""

    def __init__(self, lookup: Lookup | None) -> None:
        self._lookup = lookup
        self._indexes: dict[str, CodeSystemIndex | None] = {}

    def value_set(self, url: str) -> dict[str, Any] | None:
        found = core_source().value_set(url)
        if found is None and self._lookup is not None:
            found = self._lookup("ValueSet", url.split("|", 1)[0])
        return found

    def code_system(self, url: str, version: str | None = None) -> CodeSystemIndex | None:
        found = core_source().code_system(url, version)
        if found is not None or self._lookup is None:
            return found
        key = f"{url}|{version or ''}"
        if key not in self._indexes:
            resource = self._lookup("CodeSystem", url.split("|", 1)[0])
            if resource is not None and (not enumerable(resource) or version not in (None, resource.get("version"))):
                resource = None
            self._indexes[key] = CodeSystemIndex(resource) if resource is not None else None
        return self._indexes[key]


def below(system: str | None, code: str, lookup: Lookup | None) -> set[str]:
    """``code`` and every code it subsumes (unknown systems: the code alone)."""
    cs = _LookupSource(lookup).code_system(system) if system else None
    return {code} | (set(cs.descendants(code)) if cs is not None else set())


def above(system: str | None, code: str, lookup: Lookup | None) -> set[str]:
    """``code`` and every code that subsumes it (unknown systems: the code alone)."""
    cs = _LookupSource(lookup).code_system(system) if system else None
    return {code} | (set(cs.ancestors(code)) if cs is not None else set())


def expand_valueset(url: str, lookup: Lookup | None = None) -> Pairs | None:
    """The (system, code) pairs of a value set, or None when it is unknown or cannot be expanded."""
    source = _LookupSource(lookup)
    vs = source.value_set(url)
    if vs is None:
        return None
    try:
        result = evaluate(source, vs)
    except ExpansionError:
        result = None
    if result is None or result.unheld:
        if vs.get("expansion", {}).get("contains"):
            return stored_expansion(vs).pairs()
        return None
    return result.pairs()
