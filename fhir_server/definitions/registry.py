"""The definitions registry: built once per process from the packaged R4 core."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from fhir_server.definitions._files import core_resources
from fhir_server.definitions.structure import Node, compile_definition


@dataclass(frozen=True, slots=True)
class Definitions:
    """Lookup structures over the R4 core: resource types and compiled element nodes."""

    resource_types: frozenset[str]
    nodes: dict[str, Node]
    structure_definitions: dict[str, dict[str, Any]]  # canonical URL -> StructureDefinition
    regexes: dict[str, str]  # primitive type -> regex from its ``.value`` element

    def is_resource_type(self, name: str) -> bool:
        return name in self.resource_types


def _primitive_regexes(type_sds: list[dict[str, Any]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for sd in type_sds:
        if sd.get("kind") != "primitive-type":
            continue
        for element in sd["snapshot"]["element"]:
            if element["path"] != sd["id"] + ".value":
                continue
            for t in element.get("type", []):
                for ext in t.get("extension", []):
                    if ext.get("url") == "http://hl7.org/fhir/StructureDefinition/regex":
                        out[sd["id"]] = ext["valueString"]
    return out


@cache
def get_definitions() -> Definitions:
    resource_sds = core_resources("profiles-resources", "StructureDefinition")
    type_sds = core_resources("profiles-types", "StructureDefinition")
    nodes: dict[str, Node] = {}
    resource_types: set[str] = set()
    by_url: dict[str, dict[str, Any]] = {}
    for sd in type_sds + resource_sds:
        by_url[sd["url"]] = sd
        if sd.get("derivation") == "constraint":
            continue  # profiles on types (SimpleQuantity ...) reuse their base type's structure
        compile_definition(sd, nodes)
        if sd.get("kind") == "resource" and not sd.get("abstract"):
            resource_types.add(sd["type"])
    return Definitions(frozenset(resource_types), nodes, by_url, _primitive_regexes(type_sds))
