"""What the XML form of each JSON object looks like, compiled once from the R4 StructureDefinitions.

The element nodes of ``definitions/structure.py`` say which properties an object has and in which
order (snapshot order is the order XML requires, FHIR R4 xml.html "Elements must always appear in the
order documented"). This module adds how each property is written in XML, again from the definitions:

- ``ElementDefinition.representation = xmlAttr`` (``Element.id``, ``Extension.url``, the primitive
  ``value``) → an attribute;
- a primitive type whose ``value`` is represented as ``xhtml`` (``Narrative.div``) → XHTML content;
- a type whose StructureDefinition is a resource (``contained``, ``Bundle.entry.resource``,
  ``Parameters.parameter.resource``) → an element that wraps a resource;
- other primitive types → an element with a ``value`` attribute; everything else → a nested element.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from fhir_server.definitions import Definitions, Node, get_definitions


class Kind(enum.Enum):
    ATTRIBUTE = "attribute"
    PRIMITIVE = "primitive"
    XHTML = "xhtml"
    COMPLEX = "complex"
    RESOURCE = "resource"


@dataclass(frozen=True, slots=True)
class XmlField:
    name: str  # the JSON property name, which is also the XML element or attribute name
    kind: Kind
    type_code: str
    node: str | None  # the node of nested content (COMPLEX) or of the ``_name`` object (PRIMITIVE)
    is_array: bool
    order: int  # position in the definition: the XML element order


@dataclass(frozen=True, slots=True)
class XmlNode:
    key: str
    fields: Mapping[str, XmlField]
    attributes: tuple[XmlField, ...]  # the ATTRIBUTE fields, written in the start tag


@dataclass(frozen=True, slots=True)
class XmlSchema:
    nodes: Mapping[str, XmlNode]
    resource_types: frozenset[str]  # concrete types that may be a document root or a wrapped resource


def _definitions(defs: Definitions) -> Iterable[dict[str, Any]]:
    # Profiles (derivation = constraint) reuse their base type's structure, as in definitions/registry.py.
    return (sd for sd in defs.structure_definitions.values() if sd.get("derivation") != "constraint")


def _representations(defs: Definitions) -> dict[str, frozenset[str]]:
    out: dict[str, frozenset[str]] = {}
    for sd in _definitions(defs):
        for element in sd.get("snapshot", {}).get("element", []):
            if "representation" in element:
                out[element["path"]] = frozenset(element["representation"])
    return out


def _xhtml_types(defs: Definitions, representation: Mapping[str, frozenset[str]]) -> frozenset[str]:
    return frozenset(sd["type"] for sd in _definitions(defs)
                     if sd.get("kind") == "primitive-type" and "xhtml" in representation.get(sd["type"] + ".value", ()))


def _resource_kinds(defs: Definitions) -> frozenset[str]:
    return frozenset(sd["type"] for sd in _definitions(defs) if sd.get("kind") == "resource")


def _kind(type_code: str, primitive: bool, reps: frozenset[str], xhtml: frozenset[str],
          resources: frozenset[str]) -> Kind:
    if "xmlAttr" in reps:
        return Kind.ATTRIBUTE
    if type_code in xhtml:
        return Kind.XHTML
    if primitive:
        return Kind.PRIMITIVE
    if type_code in resources:
        return Kind.RESOURCE
    return Kind.COMPLEX


def _compile_node(node: Node, representation: Mapping[str, frozenset[str]], xhtml: frozenset[str],
                  resources: frozenset[str]) -> XmlNode:
    fields: dict[str, XmlField] = {}
    for order, f in enumerate(node.fields.values()):
        kind = _kind(f.type_code, f.primitive, representation.get(f.path, frozenset()), xhtml, resources)
        child = f.type_code if kind is Kind.PRIMITIVE else f.node
        fields[f.name] = XmlField(f.name, kind, f.type_code, child, f.is_array, order)
    attributes = tuple(f for f in fields.values() if f.kind is Kind.ATTRIBUTE)
    return XmlNode(node.key, fields, attributes)


@cache
def get_schema() -> XmlSchema:
    defs = get_definitions()
    representation = _representations(defs)
    xhtml = _xhtml_types(defs, representation)
    resources = _resource_kinds(defs)
    nodes = {key: _compile_node(node, representation, xhtml, resources) for key, node in defs.nodes.items()}
    return XmlSchema(nodes, defs.resource_types)
