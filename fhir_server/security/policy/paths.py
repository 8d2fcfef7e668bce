"""The small FHIRPath subset the R4 compartment and clinical-date expressions use, compiled once.

The R4 patient CompartmentDefinition names search parameters; their expressions (from the core
``search-parameters`` bundle) are unions of simple paths such as
``Observation.subject | Observation.performer``, ``Condition.subject.where(resolve() is Patient)``
or ``(RiskAssessment.occurrence as dateTime)``. Evaluating those with a full FHIRPath engine on
every policy decision would be slow for search pages, so each union is split into plain element
paths once (per resource type) and walked over the JSON directly. ``where(resolve() is X)`` is
kept as a type filter on the references found; choice elements (``effective``) match their typed
JSON names (``effectiveDateTime``, ``effectivePeriod`` ...).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

_RESOLVE_IS = re.compile(r"\.where\(resolve\(\) is ([A-Z][A-Za-z]+)\)$")
_AS = re.compile(r"^\((.+) as ([A-Za-z]+)\)$")
_DOT_AS = re.compile(r"\.as\(([A-Za-z]+)\)$")


@dataclass(frozen=True, slots=True)
class ElementPath:
    """A compiled ``Type.a.b`` path with an optional reference target-type filter."""

    resource_type: str
    steps: tuple[str, ...]
    target_type: str | None = None
    choice_type: str | None = None


def compile_union(expression: str, resource_type: str) -> tuple[ElementPath, ...]:
    """The parts of a ``|`` union that apply to ``resource_type``, as ElementPaths."""
    paths = []
    for raw in expression.split("|"):
        part = raw.strip()
        choice = None
        match = _AS.match(part) or _DOT_AS.search(part)
        if match is not None and match.re is _AS:
            part, choice = match.group(1).strip(), match.group(2)
        elif match is not None:
            part, choice = part[: match.start()], match.group(1)
        target = None
        where = _RESOLVE_IS.search(part)
        if where is not None:
            part, target = part[: where.start()], where.group(1)
        head, _, rest = part.partition(".")
        if head != resource_type or not rest or "(" in rest:
            continue
        paths.append(ElementPath(resource_type, tuple(rest.split(".")), target, choice))
    return tuple(paths)


def _children(node: Any, name: str, last: bool, choice: str | None) -> Iterator[Any]:
    if not isinstance(node, dict):
        return
    if name in node:
        value = node[name]
        yield from value if isinstance(value, list) else [value]
        return
    if not last:
        return
    # A choice element [x]: "effective" matches "effectiveDateTime", "effectivePeriod", ...
    for key, value in node.items():
        suffix = key[len(name) :]
        if key.startswith(name) and suffix[:1].isupper() and (choice is None or suffix.lower() == choice.lower()):
            yield from value if isinstance(value, list) else [value]


def evaluate(path: ElementPath, resource: dict[str, Any]) -> list[Any]:
    """All values the path reaches in the resource (lists flattened, as FHIRPath does)."""
    nodes: list[Any] = [resource]
    for index, step in enumerate(path.steps):
        last = index == len(path.steps) - 1
        nodes = [child for node in nodes for child in _children(node, step, last, path.choice_type)]
        if not nodes:
            break
    return nodes
