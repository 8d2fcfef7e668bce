"""Follow a value of a record back to its input: resolve a :class:`Source` and read a record path.

``record.trace`` maps record paths (``"diagnoses[0].icd10.code"``) to sources
(``Condition/c1: Condition.code.coding[0].code``). :func:`resolve_source` reads the input value a
source names and :func:`record_value` the record value a path names, so an auditor (or a test) can check
that every output value was copied from the input, or derived by the rule the source states.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mappings._fhir import ResourceSet
from mappings.checks import ru_display
from mappings.model import RemoteServiceRecord, Source

_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?")
_MISSING = object()


def _walk(node: Any, path: str, get: Any) -> Any:
    for step in path.split("."):
        match = _STEP.fullmatch(step)
        if match is None:
            raise ValueError(f"cannot read path step {step!r} of {path!r}")
        node = get(node, match[1])
        if node is _MISSING:
            raise KeyError(f"{path}: no {match[1]}")
        if match[2] is not None:
            node = node[int(match[2])]
    return node


def _json_get(node: Any, name: str) -> Any:
    return node.get(name, _MISSING) if isinstance(node, dict) else _MISSING


def resolve_source(resources: Mapping[str, dict[str, Any]], source: Source) -> Any:
    """The input value a source names (for ``terminology`` sources: the display the service gives)."""
    if source.reference == "terminology":
        system, _, code = source.path.rpartition("|")
        display = ru_display(system, code)
        if display is None:
            raise KeyError(f"the terminology service has no display for {source.path}")
        return display
    found = ResourceSet(resources).get(source.reference)
    if found is None:
        raise KeyError(f"{source.reference} is not in the input")
    resource_type, _, rest = source.path.partition(".")
    if resource_type != found.resource_type:
        raise KeyError(f"{source.path} does not start at the {found.resource_type} {source.reference}")
    return _walk(found.root, rest, _json_get) if rest else found.root


def record_value(record: RemoteServiceRecord, path: str) -> Any:
    """The value at a record path such as ``"note.indicators[0].unit"`` (a ``trace`` key)."""
    return _walk(record, path, lambda node, name: getattr(node, name, _MISSING))
