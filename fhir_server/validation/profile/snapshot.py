"""Snapshot generation: base snapshot + differential → snapshot (FHIR R4 §2.6.1.1 "Snapshot generation").

Supported, because the KZ IG uses it: constraining existing elements (cardinality, types, fixed/pattern,
bindings, added constraints, slicing, short/definition), creating slices (a new element id with
``:sliceName``), and stepping into a data type's children (``Patient.identifier:iin.system``) by unrolling
that type's own snapshot under the element. Differential elements must carry ``id`` and come in snapshot
order, as the IG publisher also requires.

Not supported (raises ``SnapshotError``): constraining children of a choice element with several types,
re-slicing (``a:b/c``), and differentials that reorder elements.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

__all__ = ["SnapshotError", "generate_snapshot"]

SdResolver = Callable[[str], dict[str, Any] | None]
_CORE_SD = "http://hl7.org/fhir/StructureDefinition/"


class SnapshotError(ValueError):
    """The differential cannot be applied to its base."""


def generate_snapshot(sd: dict[str, Any], resolve: SdResolver) -> list[dict[str, Any]]:
    """The snapshot elements of ``sd`` built from its base definition's snapshot and its differential.

    ``resolve`` returns a StructureDefinition (with snapshot) for a canonical URL, or None.
    """
    base_url = sd.get("baseDefinition")
    base = resolve(base_url) if base_url else None
    if base is None or "snapshot" not in base:
        raise SnapshotError(f"{sd.get('url')}: base definition {base_url!r} is unknown or has no snapshot")
    elements = copy.deepcopy(base["snapshot"]["element"])
    source = sd["url"]
    for diff in sd.get("differential", {}).get("element", []):
        if "id" not in diff:
            raise SnapshotError(f"{source}: differential element {diff.get('path')!r} has no id")
        index = _find_or_make(elements, diff["id"], resolve, source)
        _merge(elements[index], diff, source)
    return elements


def _index_of(elements: list[dict[str, Any]], element_id: str) -> int | None:
    for i, element in enumerate(elements):
        if element["id"] == element_id:
            return i
    return None


def _parent_id(element_id: str) -> str:
    """The id one segment up; dots inside ``[x]`` or slice names do not occur in our ids."""
    return element_id.rsplit(".", 1)[0]


def _find_or_make(elements: list[dict[str, Any]], element_id: str, resolve: SdResolver, source: str) -> int:
    found = _index_of(elements, element_id)
    if found is not None:
        return found
    last = element_id.rsplit(".", 1)[-1]
    if ":" in last:
        return _make_slice(elements, element_id, source)
    parent = _parent_id(element_id)
    if parent == element_id:
        raise SnapshotError(f"{source}: element {element_id!r} not found in base")
    parent_index = _find_or_make(elements, parent, resolve, source)
    _unroll_type(elements, parent_index, resolve, source)
    found = _index_of(elements, element_id)
    if found is None:
        raise SnapshotError(f"{source}: element {element_id!r} is not a child of its type")
    return found


def _subtree_end(elements: list[dict[str, Any]], index: int) -> int:
    """Index just past the element at ``index``, its descendants and its slices."""
    root = elements[index]["id"]
    end = index + 1
    while end < len(elements):
        other = elements[end]["id"]
        if not (other.startswith(root + ".") or other.startswith(root + ":")):
            break
        end += 1
    return end


def _make_slice(elements: list[dict[str, Any]], element_id: str, source: str) -> int:
    """Copy the sliced element (and its children) as a new slice placed after the existing ones."""
    sliced_id, slice_name = element_id.rsplit(":", 1)
    if "/" in slice_name:
        raise SnapshotError(f"{source}: re-slicing {element_id!r} is not supported")
    base_index = _index_of(elements, sliced_id)
    if base_index is None:
        raise SnapshotError(f"{source}: sliced element {sliced_id!r} not found")
    end = _subtree_end(elements, base_index)
    template = [
        e for e in elements[base_index:end] if e["id"] == sliced_id or e["id"].startswith(sliced_id + ".")
    ]
    copies = []
    for element in copy.deepcopy(template):
        element["id"] = element_id + element["id"][len(sliced_id):]
        copies.append(element)
    copies[0]["sliceName"] = slice_name
    copies[0].pop("slicing", None)
    # A slice is one part of the sliced element: the element's own minimum does not carry over (a slice
    # the differential leaves unconstrained is optional), its maximum does (R4 §5.1.0.11).
    copies[0]["min"] = 0
    elements[end:end] = copies
    return end


def _unroll_type(elements: list[dict[str, Any]], index: int, resolve: SdResolver, source: str) -> None:
    """Insert the children of the element's (single) type under it, re-identified and re-pathed."""
    element = elements[index]
    if index + 1 < len(elements) and elements[index + 1]["id"].startswith(element["id"] + "."):
        return
    types = element.get("type", [])
    if len(types) != 1:
        raise SnapshotError(f"{source}: cannot step into {element['id']!r}: it has {len(types)} types")
    profiles = types[0].get("profile") or [_CORE_SD + types[0]["code"]]
    type_sd = resolve(profiles[0])
    if type_sd is None or "snapshot" not in type_sd:
        raise SnapshotError(f"{source}: no snapshot for type {profiles[0]!r} of {element['id']!r}")
    type_elements = type_sd["snapshot"]["element"]
    root_id, root_path = type_elements[0]["id"], type_elements[0]["path"]
    children = []
    for child in copy.deepcopy(type_elements[1:]):
        child["id"] = element["id"] + child["id"][len(root_id):]
        child["path"] = element["path"] + child["path"][len(root_path):]
        children.append(child)
    elements[index + 1:index + 1] = children


def _merge(element: dict[str, Any], diff: dict[str, Any], source: str) -> None:
    if "type" in diff:
        _check_type_narrowing(element, diff, source)
    for key, value in diff.items():
        if key in ("id", "path"):
            continue
        if key == "constraint":
            existing = element.setdefault("constraint", [])
            known = {c["key"] for c in existing}
            existing.extend(
                {**c, "source": c.get("source", source)} for c in value if c["key"] not in known
            )
            continue
        if key.startswith(("fixed", "pattern")):
            for old in [k for k in element if k.startswith(("fixed", "pattern"))]:
                del element[old]
        element[key] = copy.deepcopy(value)


def _check_type_narrowing(element: dict[str, Any], diff: dict[str, Any], source: str) -> None:
    """A profile may only narrow the base types (R4 §5.1.0.4 "Profiling rules")."""
    base_codes = {t["code"] for t in element.get("type", [])}
    new_codes = {t["code"] for t in diff["type"]}
    if not new_codes:
        raise SnapshotError(f"{source}: {diff['id']!r} removes every type")
    if base_codes and not new_codes <= base_codes:
        raise SnapshotError(f"{source}: {diff['id']!r} types {sorted(new_codes - base_codes)} are not in the base")
