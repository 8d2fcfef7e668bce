"""CodeSystem/$lookup (R4 CodeSystem §4.8.15.1): name, version, display, designations and properties."""

from __future__ import annotations

from typing import Any

from fhir_server.definitions.codesystem import HIERARCHY_PROPERTIES, CodeSystemIndex, Concept
from terminology._registry import Registry
from terminology._text import display_for
from terminology.errors import TerminologyError


def lookup(
    registry: Registry, system: str, code: str, version: str | None, display_language: str | None
) -> dict[str, Any]:
    cs = registry.code_system(system, version)
    if cs is None:
        wanted = f"{system}|{version}" if version else system
        raise TerminologyError("not-found", f"code system {wanted} is not held by this server")
    concept = cs.get(code)
    if concept is None:
        partial = "" if cs.complete else f" (this server holds only a {cs.content} of it)"
        raise TerminologyError("not-found", f"code {code!r} is not in code system {system}{partial}")
    params: list[dict[str, Any]] = [{"name": "name", "valueString": cs.name}]
    if cs.version:
        params.append({"name": "version", "valueString": cs.version})
    display = display_for(concept.display, concept.designations, display_language)
    if display:
        params.append({"name": "display", "valueString": display})
    if concept.definition:
        params.append({"name": "definition", "valueString": concept.definition})
    params.extend(_designation(d.to_fhir()) for d in concept.designations)
    params.extend(_properties(cs, concept))
    return {"resourceType": "Parameters", "parameter": params}


def _designation(designation: dict[str, Any]) -> dict[str, Any]:
    part: list[dict[str, Any]] = []
    if "language" in designation:
        part.append({"name": "language", "valueCode": designation["language"]})
    if "use" in designation:
        part.append({"name": "use", "valueCoding": designation["use"]})
    part.append({"name": "value", "valueString": designation["value"]})
    return {"name": "designation", "part": part}


def _properties(cs: CodeSystemIndex, concept: Concept) -> list[dict[str, Any]]:
    out = [_property("parent", "valueCode", p) for p in concept.parents]
    out += [_property("child", "valueCode", c) for c in concept.children]
    out += [_property(code, key, value) for code, key, value in concept.properties if code not in HIERARCHY_PROPERTIES]
    if concept.abstract and not concept.property_values("notSelectable"):
        out.append(_property("notSelectable", "valueBoolean", True))
    return out


def _property(code: str, key: str, value: Any) -> dict[str, Any]:
    return {"name": "property", "part": [{"name": "code", "valueCode": code}, {"name": "value", key: value}]}
