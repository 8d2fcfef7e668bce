"""Compile a StructureDefinition snapshot into an ``ElementRule`` tree (done once per profile)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fhir_server.validation.profile.errata import BINDING_ERRATA, corrected_expression
from fhir_server.validation.profile.model import (
    Binding,
    CompiledProfile,
    Constraint,
    Discriminator,
    ElementRule,
    Slicing,
    TypeRule,
)

__all__ = ["compile_structure", "constraints_of"]

# Given an element's type, the invariants its data type (or type profile) imposes on every instance.
TypeConstraints = Callable[[TypeRule], tuple[Constraint, ...]]
_FHIRPATH_SYSTEM = "http://hl7.org/fhirpath/System."
_STRUCTURAL = frozenset({"Element", "BackboneElement"})


def constraints_of(element: dict[str, Any]) -> tuple[Constraint, ...]:
    out = []
    for raw in element.get("constraint", []):
        expression = raw.get("expression")
        if not expression:
            continue
        corrected = corrected_expression(raw["key"], expression)
        if corrected is None:
            continue
        out.append(
            Constraint(
                key=raw["key"],
                severity=raw.get("severity", "error"),
                human=raw.get("human", ""),
                expression=corrected,
                source=raw.get("source", ""),
            )
        )
    return tuple(out)


def _types(element: dict[str, Any]) -> tuple[TypeRule, ...]:
    out = []
    for raw in element.get("type", []):
        code = raw["code"]
        if code.startswith(_FHIRPATH_SYSTEM):
            code = code[len(_FHIRPATH_SYSTEM):].lower()  # System.String on Element.id etc.
        out.append(TypeRule(code, tuple(raw.get("profile", ())), tuple(raw.get("targetProfile", ()))))
    return tuple(out)


def _value_with_prefix(element: dict[str, Any], prefix: str) -> Any:
    for key, value in element.items():
        if key.startswith(prefix) and key != prefix:
            return value
    return None


def _binding(sd_url: str, element: dict[str, Any]) -> Binding | None:
    raw = element.get("binding")
    if not raw or not raw.get("valueSet"):
        return None
    value_set = BINDING_ERRATA.get((sd_url, element["path"]), raw["valueSet"].split("|")[0])
    return Binding(raw["strength"], value_set)


def _slicing(element: dict[str, Any]) -> Slicing | None:
    raw = element.get("slicing")
    if not raw:
        return None
    discriminators = tuple(Discriminator(d["type"], d["path"]) for d in raw.get("discriminator", []))
    return Slicing(discriminators, raw.get("rules", "open"), bool(raw.get("ordered", False)))


def _rule(sd_url: str, element: dict[str, Any], type_constraints: TypeConstraints) -> ElementRule:
    types = _types(element)
    constraints = constraints_of(element)
    if len(types) == 1 and types[0].code not in _STRUCTURAL:
        known = {c.key for c in constraints}
        constraints += tuple(c for c in type_constraints(types[0]) if c.key not in known)
    max_text = element.get("max", "*")
    last = element["id"].rsplit(".", 1)[-1]
    return ElementRule(
        id=element["id"],
        path=element["path"],
        name=last.split(":", 1)[0],
        min=int(element.get("min", 0)),
        max=None if max_text == "*" else int(max_text),
        types=types,
        fixed=_value_with_prefix(element, "fixed"),
        pattern=_value_with_prefix(element, "pattern"),
        binding=_binding(sd_url, element),
        constraints=constraints,
        slicing=_slicing(element),
        slice_name=element.get("sliceName"),
        content_reference=element.get("contentReference"),
        is_modifier=bool(element.get("isModifier", False)),
    )


def compile_structure(sd: dict[str, Any], type_constraints: TypeConstraints) -> CompiledProfile:
    """Build the rule tree from ``sd['snapshot']`` using element ids (which carry slice names)."""
    elements = sd["snapshot"]["element"]
    by_id: dict[str, ElementRule] = {}
    root = _rule(sd["url"], elements[0], type_constraints)
    by_id[root.id] = root
    for element in elements[1:]:
        rule = _rule(sd["url"], element, type_constraints)
        by_id[rule.id] = rule
        parent_id, last = rule.id.rsplit(".", 1)
        if ":" in last:
            by_id[parent_id + "." + last.split(":", 1)[0]].slices.append(rule)
        else:
            by_id[parent_id].children[rule.json_name] = rule
    for rule in by_id.values():
        if rule.content_reference:
            _link_content_reference(rule, by_id)
    contexts = tuple(_context_text(c) for c in sd.get("context", []))
    return CompiledProfile(sd["url"], sd["type"], sd.get("kind", "resource"), root, contexts)


def _link_content_reference(rule: ElementRule, by_id: dict[str, ElementRule]) -> None:
    """``contentReference: #Questionnaire.item`` reuses that element's definition (R4 §2.12.0.5)."""
    target = by_id[rule.content_reference.split("#", 1)[1]]  # type: ignore[union-attr]
    rule.children = target.children
    rule.types = target.types
    known = {c.key for c in rule.constraints}
    rule.constraints += tuple(c for c in target.constraints if c.key not in known)


def _context_text(context: dict[str, Any]) -> str:
    return str(context.get("expression", ""))
