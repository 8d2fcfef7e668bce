"""Code sets for the token modifiers ``:in``, ``:not-in``, ``:above`` and ``:below``
(FHIR R4 search §3.1.1.4.5 token modifiers).

ValueSets and CodeSystems come from the R4 core package, then from the server's own data through a
``lookup(resource_type, url)`` callback the backend provides. Expansion covers enumerated concepts,
whole (complete) code systems, ``is-a`` / ``descendent-of`` / ``=`` filters, imported value sets and a
stored ``expansion``; subsumption follows the CodeSystem's concept hierarchy. Anything else (e.g.
SNOMED CT expressions) cannot be expanded here and the search is answered with 400.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from fhir_server.definitions import core_resources

Lookup = Callable[[str, str], dict[str, Any] | None]
Pairs = frozenset[tuple[str, str]]


@cache
def _core(resource_type: str) -> dict[str, dict[str, Any]]:
    return {r["url"]: r for r in core_resources("valuesets", resource_type) if "url" in r}


def _find(resource_type: str, url: str, lookup: Lookup | None) -> dict[str, Any] | None:
    url = url.split("|", 1)[0]
    found = _core(resource_type).get(url)
    if found is None and lookup is not None:
        found = lookup(resource_type, url)
    return found


def _parents(concepts: list[dict[str, Any]], parent: str | None, out: dict[str, str | None]) -> None:
    for c in concepts:
        if "code" in c:
            out[c["code"]] = parent
            _parents(c.get("concept", []), c["code"], out)


def _hierarchy(system: str, lookup: Lookup | None) -> dict[str, str | None] | None:
    """code -> parent code for a CodeSystem with its concepts, or None when unknown."""
    cs = _find("CodeSystem", system, lookup)
    if cs is None or not cs.get("concept"):
        return None
    out: dict[str, str | None] = {}
    _parents(cs["concept"], None, out)
    return out


def below(system: str | None, code: str, lookup: Lookup | None) -> set[str]:
    """``code`` and every code it subsumes (unknown systems: the code alone)."""
    tree = _hierarchy(system, lookup) if system else None
    if tree is None:
        return {code}
    out, frontier = {code}, {code}
    while frontier:
        frontier = {c for c, parent in tree.items() if parent in frontier} - out
        out |= frontier
    return out


def above(system: str | None, code: str, lookup: Lookup | None) -> set[str]:
    """``code`` and every code that subsumes it (unknown systems: the code alone)."""
    tree = _hierarchy(system, lookup) if system else None
    out = {code}
    current: str | None = code
    while tree is not None and current is not None and (current := tree.get(current)) is not None:
        if current in out:
            break
        out.add(current)
    return out


def _include(inc: dict[str, Any], lookup: Lookup | None, depth: int) -> set[tuple[str, str]] | None:
    result: set[tuple[str, str]] = set()
    for imported in inc.get("valueSet", []):
        sub = expand_valueset(imported, lookup, depth + 1)
        if sub is None:
            return None
        result |= sub
    system = inc.get("system")
    if system is None:
        return result
    if "concept" in inc:
        return result | {(system, c["code"]) for c in inc["concept"]}
    tree = _hierarchy(system, lookup)
    if tree is None:
        return None
    codes = set(tree)
    for flt in inc.get("filter", []):
        op, value = flt.get("op"), flt.get("value", "")
        if flt.get("property") not in ("concept", "code") or op not in ("is-a", "descendent-of", "="):
            return None
        chosen = below(system, value, lookup) if op != "=" else {value}
        codes &= chosen - {value} if op == "descendent-of" else chosen
    return result | {(system, c) for c in codes}


def _contains(items: list[dict[str, Any]], out: set[tuple[str, str]]) -> None:
    for item in items:
        if "system" in item and "code" in item:
            out.add((item["system"], item["code"]))
        _contains(item.get("contains", []), out)


def expand_valueset(url: str, lookup: Lookup | None = None, depth: int = 0) -> Pairs | None:
    """The (system, code) pairs of a value set, or None when it is unknown or cannot be expanded."""
    vs = _find("ValueSet", url, lookup) if depth < 8 else None
    if vs is None:
        return None
    if vs.get("expansion", {}).get("contains"):
        expanded: set[tuple[str, str]] = set()
        _contains(vs["expansion"]["contains"], expanded)
        return frozenset(expanded)
    compose = vs.get("compose", {})
    codes: set[tuple[str, str]] = set()
    for inc in compose.get("include", []):
        part = _include(inc, lookup, depth)
        if part is None:
            return None
        codes |= part
    for exc in compose.get("exclude", []):
        part = _include(exc, lookup, depth)
        if part is None:
            return None
        codes -= part
    return frozenset(codes)
