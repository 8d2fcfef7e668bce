"""Slice assignment and slice-level rules (FHIR R4 §5.1.0.11 "Slicing").

Discriminators supported: ``value`` and ``pattern`` (against the slice's fixed/pattern value at the
path, or the extension URL of a slice typed by an extension profile), ``type``, ``profile`` (the item
must conform to the slice's type profile) and ``exists``. ``resolve()`` paths are not supported and
never match.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fhir_server.validation.issues import Issue
from fhir_server.validation.profile.model import Discriminator, ElementRule
from fhir_server.validation.profile.values import matches_fixed, matches_pattern, values_at

__all__ = ["Item", "SliceOutcome", "assign_slices"]

# Does ``value`` (of the given type) conform to the profile at ``url``? Used by profile discriminators.
Conforms = Callable[[Any, str], bool]


@dataclass(slots=True)
class Item:
    """One occurrence of an element in the instance."""

    value: Any
    extension: Any  # the ``_name`` object of a primitive, else None
    type_code: str
    expression: str


@dataclass(slots=True)
class SliceOutcome:
    rules: list[ElementRule]  # the rule each item is validated against (its slice, or the base)
    issues: list[Issue]


def _rule_at(rule: ElementRule, path: str) -> ElementRule | None:
    found = _rules_at(rule, path)
    return found[0] if found else None


def _rules_at(rule: ElementRule, path: str) -> list[ElementRule]:
    """The rules for ``path`` below ``rule``: the element itself, then (where an element on the way is sliced)
    its required slices, whose fixed values any conforming item must also carry (``code.coding.code`` of the
    bp profile's components is fixed inside the required coding slice ``SBPCode``)."""
    if path in ("$this", ""):
        return [rule]
    current = [rule]
    for segment in path.split("."):
        name = segment.removesuffix("[x]")
        step = []
        for candidate in current:
            child = candidate.children.get(name)
            if child is not None:
                step.append(child)
                step.extend(s for s in child.slices if s.min > 0)
        current = step
    return current


def _expected(slice_rule: ElementRule, path: str) -> tuple[str, Any] | None:
    """The value the slice requires at ``path``: ('fixed'|'pattern', value) or None."""
    for target in _rules_at(slice_rule, path):
        if target.fixed is not None:
            return "fixed", target.fixed
        if target.pattern is not None:
            return "pattern", target.pattern
    if path == "url" and slice_rule.types and slice_rule.types[0].code == "Extension":
        profiles = slice_rule.types[0].profiles
        if profiles:
            return "fixed", profiles[0]
    return None


def _matches(item: Item, slice_rule: ElementRule, discriminator: Discriminator, conforms: Conforms) -> bool:
    kind, path = discriminator.kind, discriminator.path
    if "resolve()" in path:
        return False
    if kind in ("value", "pattern"):
        expected = _expected(slice_rule, path)
        if expected is None:
            return False
        how, wanted = expected
        check = matches_fixed if how == "fixed" else matches_pattern
        return any(check(found, wanted) for found in values_at(item.value, path))
    if kind == "type":
        return item.type_code in slice_rule.type_codes
    if kind == "exists":
        target = _rule_at(slice_rule, path)
        present = bool(values_at(item.value, path))
        return target is not None and (present if target.min > 0 else not present)
    if kind == "profile":
        profiles = [p for t in slice_rule.types for p in t.profiles]
        return bool(profiles) and all(conforms(item.value, p) for p in profiles)
    return False


def _slice_for(item: Item, base: ElementRule, conforms: Conforms) -> int | None:
    assert base.slicing is not None
    for index, slice_rule in enumerate(base.slices):
        discriminators = base.slicing.discriminators
        if discriminators and all(_matches(item, slice_rule, d, conforms) for d in discriminators):
            return index
    return None


def assign_slices(base: ElementRule, items: list[Item], parent_expression: str, conforms: Conforms) -> SliceOutcome:
    """Match each item to a slice and check slice cardinality, closed slicing and order."""
    if base.slicing is None:
        return SliceOutcome([base] * len(items), [])
    matched = [_slice_for(item, base, conforms) for item in items]
    issues: list[Issue] = []
    where = f"{parent_expression}.{base.json_name}"
    for index, slice_rule in enumerate(base.slices):
        count = matched.count(index)
        if count < slice_rule.min:
            issues.append(Issue("error", "required", f"Slice '{slice_rule.slice_name}' of {base.path} requires "
                                f"at least {slice_rule.min} item(s), found {count}", where))
        if slice_rule.max is not None and count > slice_rule.max:
            issues.append(Issue("error", "structure", f"Slice '{slice_rule.slice_name}' of {base.path} allows "
                                f"at most {slice_rule.max} item(s), found {count}", where))
    issues.extend(_order_and_closure(base, items, matched))
    rules = [base if m is None else base.slices[m] for m in matched]
    return SliceOutcome(rules, issues)


def _order_and_closure(base: ElementRule, items: list[Item], matched: list[int | None]) -> list[Issue]:
    assert base.slicing is not None
    issues = []
    rules = base.slicing.rules
    for item, slot in zip(items, matched, strict=True):
        if slot is None and rules == "closed":
            issues.append(Issue("error", "structure", f"{base.path} is closed-sliced and this item matches no "
                                "slice", item.expression))
    if rules == "openAtEnd":
        first_unmatched = next((i for i, m in enumerate(matched) if m is None), len(matched))
        if any(m is not None for m in matched[first_unmatched:]):
            issues.append(Issue("error", "structure", f"{base.path}: items that match no slice must come after "
                                "all sliced items (openAtEnd)", items[first_unmatched].expression))
    if base.slicing.ordered:
        slots = [m for m in matched if m is not None]
        if slots != sorted(slots):
            issues.append(Issue("error", "structure", f"{base.path}: slices must appear in the order the profile "
                                "defines them", items[0].expression))
    return issues
