"""``_summary`` and ``_elements`` (FHIR R4 search §3.1.1.5.8–§3.1.1.5.9).

Summary elements come from ``ElementDefinition.isSummary`` of the resource's StructureDefinition
and mandatory elements from ``min >= 1`` — data, not tables written by hand. A subsetted resource is
tagged ``SUBSETTED`` (R4 §3.1.1.5.8: "the server SHOULD mark the resource with the tag SUBSETTED").
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fhir_server.definitions import get_definitions

SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "Resource encoded in summary mode",
}
_ALWAYS = frozenset({"resourceType", "id", "meta"})


@cache
def _element_names(resource_type: str) -> tuple[dict[str, tuple[str, ...]], frozenset[str], frozenset[str]]:
    """(FHIRPath name -> JSON names, summary JSON names, mandatory JSON names) of a resource type."""
    defs = get_definitions()
    node = defs.nodes.get(resource_type)
    sd = defs.structure_definitions.get(f"http://hl7.org/fhir/StructureDefinition/{resource_type}")
    if node is None or sd is None:
        return {}, frozenset(), frozenset()
    by_path: dict[str, list[str]] = {}
    for name, f in node.fields.items():
        by_path.setdefault(f.path, []).append(name)
    names = {path.rsplit(".", 1)[1].removesuffix("[x]"): tuple(v) for path, v in by_path.items()}
    summary: set[str] = set()
    for element in sd["snapshot"]["element"]:
        if element.get("isSummary") and element["path"].count(".") == 1:
            summary.update(by_path.get(element["path"], ()))
    mandatory = {n for names_ in node.required_names.values() for n in names_}
    return names, frozenset(summary), frozenset(mandatory)


def _keep(resource: dict[str, Any], keys: set[str]) -> dict[str, Any]:
    # A primitive's extensions live in "_name" beside "name" (R4 json.html §2.6.2.6); keep both.
    return {k: v for k, v in resource.items() if k in keys or (k.startswith("_") and k[1:] in keys)}


def _tag(resource: dict[str, Any]) -> dict[str, Any]:
    meta = dict(resource.get("meta") or {})
    tags = [t for t in meta.get("tag", []) if t.get("code") != "SUBSETTED"]
    meta["tag"] = [*tags, SUBSETTED]
    resource["meta"] = meta
    return resource


def apply_summary(resource: dict[str, Any], mode: str) -> dict[str, Any]:
    """The resource as ``_summary=mode`` (true | text | data) returns it."""
    _names, summary, mandatory = _element_names(resource.get("resourceType", ""))
    if mode == "true":
        kept = _keep(resource, set(_ALWAYS | summary))
    elif mode == "text":
        kept = _keep(resource, set(_ALWAYS | mandatory | {"text"}))
    elif mode == "data":
        kept = {k: v for k, v in resource.items() if k != "text"}
    else:
        return resource
    return _tag(kept)


def apply_elements(resource: dict[str, Any], elements: tuple[str, ...]) -> dict[str, Any]:
    """Only the requested top-level elements (plus id, meta and mandatory ones), tagged SUBSETTED."""
    resource_type = resource.get("resourceType", "")
    names, _summary, mandatory = _element_names(resource_type)
    keys = set(_ALWAYS | mandatory)
    for element in elements:
        name = element.split(".", 1)[1] if element.startswith(resource_type + ".") else element
        keys.update(names.get(name, (name,)))
    return _tag(_keep(resource, keys))
