"""Compile R4 StructureDefinition snapshots into lookup tables for the JSON walkers.

Each *node* is the set of JSON properties one object may carry: a complex data type (``HumanName``),
a resource (``Patient``) or an inline backbone element (``Patient.contact``). Choice elements
(``value[x]``) expand into one property per allowed type (``valueQuantity`` ...), as the R4 JSON
format does (FHIR R4 json.html §2.6.2.3 "Choice types"). Nothing here is written by hand per resource.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
REGEX_EXT = "http://hl7.org/fhir/StructureDefinition/regex"

PRIMITIVE_TYPES = frozenset(
    {
        "base64Binary", "boolean", "canonical", "code", "date", "dateTime", "decimal", "id", "instant",
        "integer", "markdown", "oid", "positiveInt", "string", "time", "unsignedInt", "uri", "url", "uuid",
        "xhtml",
    }
)


@dataclass(slots=True)
class Field:
    """One JSON property of a node."""

    name: str  # JSON property name, e.g. ``valueQuantity``
    path: str  # element path in the definition, e.g. ``Observation.value[x]``
    min: int
    is_array: bool
    type_code: str  # FHIR type code: ``string``, ``HumanName``, ``BackboneElement``, ``Resource``
    node: str | None  # key of the child node for complex content (type name or backbone path)
    primitive: bool
    choice_group: str | None = None  # ``value[x]`` for the members of one choice
    required_valueset: str | None = None  # canonical URL (no version) of a required binding
    target_profiles: tuple[str, ...] = ()


@dataclass(slots=True)
class Node:
    """The allowed properties of one kind of JSON object."""

    key: str
    fields: dict[str, Field] = field(default_factory=dict)
    required: list[str] = field(default_factory=list)  # element paths with min >= 1
    required_names: dict[str, tuple[str, ...]] = field(default_factory=dict)  # path -> JSON names
    choice_groups: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _type_code(t: dict[str, Any], element_path: str) -> str:
    code: str = t["code"]
    if code.startswith("http://hl7.org/fhirpath/System."):
        for ext in t.get("extension", []):
            if ext.get("url") == FHIR_TYPE_EXT:
                return str(ext.get("valueUrl") or ext.get("valueString"))
        return "string"
    return code


def _binding(element: dict[str, Any]) -> str | None:
    binding = element.get("binding")
    if not binding or binding.get("strength") != "required":
        return None
    vs = binding.get("valueSet")
    return vs.split("|", 1)[0] if isinstance(vs, str) else None


def _add_field(node: Node, element: dict[str, Any], leaf: str) -> None:
    path = element["path"]
    is_array = element.get("max") != "1" and element.get("max") != "0"
    min_ = int(element.get("min", 0))
    required_vs = _binding(element)
    if "contentReference" in element:
        ref = element["contentReference"].lstrip("#")
        node.fields[leaf] = Field(leaf, path, min_, is_array, "BackboneElement", ref, False,
                                  required_valueset=required_vs)
        names: tuple[str, ...] = (leaf,)
    else:
        types = element.get("type", [])
        choice = leaf.endswith("[x]")
        base = leaf[:-3] if choice else leaf
        names_list = []
        for t in types:
            code = _type_code(t, path)
            name = base + code[0].upper() + code[1:] if choice else base
            primitive = code in PRIMITIVE_TYPES
            if code in ("BackboneElement", "Element") and not choice:
                child = path  # inline children are defined under this path
            elif primitive:
                child = None
            else:
                child = code
            node.fields[name] = Field(
                name, path, min_, is_array, code, child, primitive,
                choice_group=path if choice else None,
                required_valueset=required_vs,
                target_profiles=tuple(t.get("targetProfile", ())),
            )
            names_list.append(name)
        names = tuple(names_list)
        if choice:
            node.choice_groups[path] = names
    if min_ >= 1 and element.get("max") != "0":
        node.required.append(path)
        node.required_names[path] = names


def compile_definition(sd: dict[str, Any], nodes: dict[str, Node]) -> None:
    """Add the nodes of one StructureDefinition (its root and its backbone elements) to ``nodes``."""
    root = sd["type"] if sd.get("kind") != "logical" else sd["id"]
    elements = sd["snapshot"]["element"]
    for element in elements:
        path: str = element["path"]
        if "." not in path:
            nodes.setdefault(root, Node(root))
            continue
        parent, _, leaf = path.rpartition(".")
        if element.get("max") == "0":
            continue
        node = nodes.setdefault(parent, Node(parent))
        _add_field(node, element, leaf)
