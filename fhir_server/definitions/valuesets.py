"""Enumerable code sets for the required bindings of the R4 core (base validation, issue 2 §5).

Only value sets whose content is fully held in the core package are enumerated; for others the
structural validator cannot tell and stays silent (the terminology service decides in profile
validation).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fhir_server.definitions._files import core_resources


@cache
def _code_systems() -> dict[str, dict[str, Any]]:
    return {cs["url"]: cs for cs in core_resources("valuesets", "CodeSystem") if "url" in cs}


@cache
def _value_sets() -> dict[str, dict[str, Any]]:
    return {vs["url"]: vs for vs in core_resources("valuesets", "ValueSet") if "url" in vs}


def _all_codes(concepts: list[dict[str, Any]]) -> set[str]:
    out: set[str] = set()
    stack = list(concepts)
    while stack:
        c = stack.pop()
        if "code" in c:
            out.add(c["code"])
        stack.extend(c.get("concept", []))
    return out


def _include(inc: dict[str, Any], depth: int) -> set[tuple[str, str]] | None:
    if inc.get("filter"):
        return None
    result: set[tuple[str, str]] = set()
    for imported in inc.get("valueSet", []):
        sub = _expand(imported.split("|", 1)[0], depth + 1)
        if sub is None:
            return None
        result |= sub
    system = inc.get("system")
    if system is None:
        return result
    if "concept" in inc:
        return result | {(system, c["code"]) for c in inc["concept"]}
    cs = _code_systems().get(system)
    if cs is None or cs.get("content") != "complete":
        return None
    return result | {(system, code) for code in _all_codes(cs.get("concept", []))}


def _expand(url: str, depth: int = 0) -> frozenset[tuple[str, str]] | None:
    if depth > 8:
        return None
    vs = _value_sets().get(url)
    if vs is None:
        return None
    compose = vs.get("compose", {})
    codes: set[tuple[str, str]] = set()
    for inc in compose.get("include", []):
        part = _include(inc, depth)
        if part is None:
            return None
        codes |= part
    for exc in compose.get("exclude", []):
        part = _include(exc, depth)
        if part is None:
            return None
        codes -= part
    return frozenset(codes)


@cache
def required_codes(valueset_url: str) -> tuple[frozenset[str], frozenset[tuple[str, str]]] | None:
    """The codes (and system|code pairs) of a value set, or None when it cannot be enumerated."""
    pairs = _expand(valueset_url)
    if pairs is None:
        return None
    return frozenset(code for _, code in pairs), pairs
