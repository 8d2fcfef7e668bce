"""Value comparisons used by fixed[x], pattern[x] and slice discriminators (FHIR R4 §2.12.0.4).

``fixed[x]``: the instance must be exactly equal (every property, nothing more).
``pattern[x]``: every property in the pattern must be present with a matching value; for repeating
properties, every pattern item must match some instance item; other properties may be present.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

__all__ = ["codes_of", "matches_fixed", "matches_pattern", "values_at"]


def _same_primitive(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return Decimal(str(a)) == Decimal(str(b))
    return bool(a == b)


def matches_fixed(instance: Any, fixed: Any) -> bool:
    if isinstance(fixed, dict):
        if not isinstance(instance, dict):
            return False
        keys = {k for k in instance if k != "id" and not k.startswith("_")} | set(fixed)
        return all(matches_fixed(instance.get(k), fixed.get(k)) for k in keys)
    if isinstance(fixed, list):
        return (
            isinstance(instance, list)
            and len(instance) == len(fixed)
            and all(matches_fixed(i, f) for i, f in zip(instance, fixed, strict=True))
        )
    return _same_primitive(instance, fixed)


def matches_pattern(instance: Any, pattern: Any) -> bool:
    if isinstance(pattern, dict):
        return isinstance(instance, dict) and all(
            matches_pattern(instance.get(key), value) for key, value in pattern.items()
        )
    if isinstance(pattern, list):
        items = instance if isinstance(instance, list) else [instance] if instance is not None else []
        return all(any(matches_pattern(i, p) for i in items) for p in pattern)
    return _same_primitive(instance, pattern)


def values_at(item: Any, path: str) -> list[Any]:
    """The values reached from ``item`` by a simple dotted path (``$this``, ``system``, ``code.coding``)."""
    current = [item]
    if path in ("$this", ""):
        return current
    for segment in path.split("."):
        nxt: list[Any] = []
        for node in current:
            if not isinstance(node, dict):
                continue
            value = node.get(segment)
            if isinstance(value, list):
                nxt.extend(value)
            elif value is not None:
                nxt.append(value)
        current = nxt
    return current


def codes_of(value: Any, type_code: str) -> list[tuple[str | None, str]]:
    """(system, code) pairs carried by a coded value of the given data type."""
    if type_code in ("code", "string", "uri") and isinstance(value, str):
        return [(None, value)]
    if not isinstance(value, dict):
        return []
    if type_code in ("Coding", "Quantity"):
        code = value.get("code")
        return [(value.get("system"), code)] if isinstance(code, str) else []
    if type_code == "CodeableConcept":
        return [
            (coding.get("system"), coding["code"])
            for coding in value.get("coding", [])
            if isinstance(coding, dict) and isinstance(coding.get("code"), str)
        ]
    return []
