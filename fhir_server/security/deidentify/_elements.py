"""Element types of every R4 resource and complex datatype, read from the core StructureDefinitions.

De-identification decides what to do with a value by its FHIR type (HumanName, Address, dateTime, ...), so
it needs the type of each JSON property. The definitions are data (architecture, core decision 2): this
index is built once from the snapshots in the R4 core package, not from hand-written tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from fhir_server.definitions import core_resources

_FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
# Profiles of Quantity are named as types in element definitions but share Quantity's elements.
_ALIASES = {"SimpleQuantity": "Quantity", "MoneyQuantity": "Quantity"}
_NESTED = ("BackboneElement", "Element")


@dataclass(frozen=True, slots=True)
class ElementType:
    """The type of one JSON property: a FHIR type code plus, for nested elements, where its children live."""

    code: str
    path: str  # e.g. "Patient.contact.name"
    children: str | None  # index key of the children: "Patient.contact", "Period", ... (None: primitive)


def _type_code(t: dict[str, Any]) -> str:
    code = str(t["code"])
    if code.startswith("http://hl7.org/fhirpath/System."):
        # Element.id, Extension.url, Resource.id: FHIRPath system types carry the FHIR type in an extension.
        for ext in t.get("extension", []):
            if ext.get("url") == _FHIR_TYPE_EXT:
                return str(ext["valueUrl"])
        return "string"
    return _ALIASES.get(code, code)


def _children_key(code: str, path: str) -> str | None:
    if code in _NESTED:
        return path
    if code[:1].isupper() and code != "Resource":
        return code
    return None


def _add_element(index: dict[str, dict[str, ElementType]], element: dict[str, Any]) -> None:
    path: str = element["path"]
    parent, name = path.rsplit(".", 1)
    props = index.setdefault(parent, {})
    if "contentReference" in element:
        # e.g. Questionnaire.item.item re-uses the definition of Questionnaire.item.
        props[name] = ElementType("BackboneElement", path, element["contentReference"].lstrip("#"))
        return
    codes = [_type_code(t) for t in element.get("type", [])]
    if name.endswith("[x]"):
        base = name[:-3]
        for code in codes:
            props[base + code[0].upper() + code[1:]] = ElementType(code, path, _children_key(code, path))
    elif codes:
        props[name] = ElementType(codes[0], path, _children_key(codes[0], path))


@cache
def element_index() -> dict[str, dict[str, ElementType]]:
    """``{"Patient": {"name": ElementType("HumanName", ...)}, "Patient.contact": {...}, "Period": {...}}``."""
    index: dict[str, dict[str, ElementType]] = {}
    definitions = core_resources("profiles-types", "StructureDefinition") + core_resources(
        "profiles-resources", "StructureDefinition"
    )
    for sd in definitions:
        if sd.get("kind") not in ("resource", "complex-type") or sd.get("derivation") == "constraint":
            continue
        for element in sd["snapshot"]["element"][1:]:
            _add_element(index, element)
    return index
