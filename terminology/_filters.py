"""ValueSet.compose.include.filter over one held CodeSystem (R4 ValueSet §4.9.5, filter-operator codes).

Supported: ``is-a``, ``descendent-of``, ``is-not-a``, ``generalizes`` on the hierarchy (property ``concept`` or
``code``); ``=``, ``in``, ``not-in``, ``regex``, ``exists`` on ``code``, ``display``, ``parent``, ``child`` and any
concept property.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from terminology._codesystem import CodeSystemIndex, Concept
from terminology.errors import TerminologyError

_HIERARCHY_OPS = ("is-a", "descendent-of", "is-not-a", "generalizes")


def apply_filter(cs: CodeSystemIndex, prop: str, op: str, value: str) -> set[str]:
    """The codes of ``cs`` that satisfy one filter."""
    if prop in ("concept", "code") and op in _HIERARCHY_OPS:
        return _hierarchy(cs, op, value)
    test = _predicate(prop, op, value)
    return {code for code, concept in cs.concepts.items() if test(concept)}


def _hierarchy(cs: CodeSystemIndex, op: str, value: str) -> set[str]:
    concept = cs.get(value)
    if concept is None:
        below: set[str] = set()
        root: set[str] = set()
    else:
        below = set(cs.descendants(concept.code))
        root = {concept.code}
    if op == "is-a":
        return root | below
    if op == "descendent-of":
        return below
    if op == "generalizes":
        return root | (set(cs.ancestors(concept.code)) if concept else set())
    return set(cs.concepts) - root - below  # is-not-a


def _values(concept: Concept, prop: str) -> list[str]:
    if prop in ("concept", "code"):
        return [concept.code]
    if prop == "display":
        return [concept.display] if concept.display else []
    if prop == "parent":
        return list(concept.parents)
    if prop == "child":
        return list(concept.children)
    return [_as_text(v) for v in concept.property_values(prop)]


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return str(value.get("code", ""))
    return str(value)


def _predicate(prop: str, op: str, value: str) -> Callable[[Concept], bool]:
    if op == "=":
        return lambda c: value in _values(c, prop)
    if op in ("in", "not-in"):
        wanted = {v.strip() for v in value.split(",")}
        inside = op == "in"
        return lambda c: bool(wanted.intersection(_values(c, prop))) is inside
    if op == "regex":
        try:
            pattern = re.compile(value)
        except re.error as exc:
            raise TerminologyError("invalid", f"filter regex {value!r} is not valid: {exc}") from exc
        return lambda c: any(pattern.fullmatch(v) for v in _values(c, prop))
    if op == "exists":
        expected = value.strip().lower() == "true"
        return lambda c: bool(_values(c, prop)) is expected
    raise TerminologyError("not-supported", f"filter operator {op!r} on property {prop!r} is not supported")
