"""Membership checks against the R4 core ValueSets and CodeSystems (the fallback terminology).

Used when no terminology service is given, or when it cannot tell. Expands ``compose.include`` with
explicit concepts, whole code systems (complete content only) and included value sets; any filter or
an unknown code system makes the answer "cannot tell" (None) rather than a guess.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fhir_server.definitions import core_resources

__all__ = ["core_membership"]

Expansion = frozenset[tuple[str, str]]


@cache
def _index() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    value_sets = {vs["url"]: vs for vs in core_resources("valuesets", "ValueSet")}
    code_systems = {cs["url"]: cs for cs in core_resources("valuesets", "CodeSystem")}
    return value_sets, code_systems


def _concept_codes(concepts: list[dict[str, Any]]) -> list[str]:
    out = []
    for concept in concepts:
        out.append(concept["code"])
        out.extend(_concept_codes(concept.get("concept", [])))
    return out


def _include(part: dict[str, Any], code_systems: dict[str, dict[str, Any]]) -> Expansion | None:
    if part.get("filter"):
        return None
    system = part.get("system")
    expansions: list[Expansion] = []
    for nested in part.get("valueSet", []):
        expanded = _expand(nested.split("|")[0])
        if expanded is None:
            return None
        expansions.append(expanded)
    if system:
        if part.get("concept"):
            own = frozenset((system, c["code"]) for c in part["concept"])
        else:
            cs = code_systems.get(system)
            if cs is None or cs.get("content") != "complete":
                return None
            own = frozenset((system, code) for code in _concept_codes(cs.get("concept", [])))
        expansions.append(own)
    if not expansions:
        return None
    result = expansions[0]
    for other in expansions[1:]:
        result &= other  # several sources in one include are intersected (R4 §4.9.5 ValueSet.compose)
    return result


@cache
def _expand(url: str) -> Expansion | None:
    value_sets, code_systems = _index()
    vs = value_sets.get(url)
    if vs is None or "compose" not in vs:
        return None
    included: set[tuple[str, str]] = set()
    for part in vs["compose"].get("include", []):
        expanded = _include(part, code_systems)
        if expanded is None:
            return None
        included |= expanded
    for part in vs["compose"].get("exclude", []):
        expanded = _include(part, code_systems)
        if expanded is None:
            return None
        included -= expanded
    return frozenset(included)


def core_membership(value_set: str, system: str | None, code: str) -> bool | None:
    """True/False when the core definitions decide; None when they cannot (unknown or filtered)."""
    expansion = _expand(value_set.split("|")[0])
    if expansion is None:
        return None
    if system is None:
        return any(c == code for _, c in expansion)
    return (system, code) in expansion
