"""ConceptMap/$translate (R4 ConceptMap §4.10.14.1) over the ConceptMaps this server holds."""

from __future__ import annotations

from typing import Any

from terminology._registry import Registry
from terminology.errors import TerminologyError

_NOT_A_MATCH = ("unmatched", "disjoint")


def translate(
    registry: Registry,
    *,
    url: str | None,
    system: str,
    code: str,
    source: str | None,
    target: str | None,
    target_system: str | None,
) -> dict[str, Any]:
    maps = _candidate_maps(registry, url, source, target)
    matches: list[dict[str, Any]] = []
    for cmap in maps:
        for group in cmap.get("group", []):
            if group.get("source") != system or (target_system and group.get("target") != target_system):
                continue
            matches.extend(_group_matches(cmap, group, code))
    found = any(m["part"][0]["valueCode"] not in _NOT_A_MATCH for m in matches)
    params: list[dict[str, Any]] = [{"name": "result", "valueBoolean": found}]
    if not found:
        params.append({"name": "message", "valueString": f"no translation found for {system}|{code}"})
    params.extend(matches)
    return {"resourceType": "Parameters", "parameter": params}


def _candidate_maps(
    registry: Registry, url: str | None, source: str | None, target: str | None
) -> list[dict[str, Any]]:
    if url:
        cmap = registry.concept_map(url)
        if cmap is None:
            raise TerminologyError("not-found", f"ConceptMap {url} is not known")
        return [cmap]
    out = []
    for cmap in registry.concept_maps():
        map_source = cmap.get("sourceCanonical") or cmap.get("sourceUri")
        map_target = cmap.get("targetCanonical") or cmap.get("targetUri")
        if (source is None or source == map_source) and (target is None or target == map_target):
            out.append(cmap)
    return out


def _group_matches(cmap: dict[str, Any], group: dict[str, Any], code: str) -> list[dict[str, Any]]:
    out = []
    for element in group.get("element", []):
        if element.get("code") != code:
            continue
        for tgt in element.get("target", []):
            out.append(_match(cmap, group, tgt.get("equivalence", "equivalent"), tgt.get("code"), tgt.get("display")))
    if not out and "unmapped" in group:
        unmapped = group["unmapped"]
        if unmapped.get("mode") == "provided":
            out.append(_match(cmap, group, "equal", code, None))
        elif unmapped.get("mode") == "fixed":
            out.append(_match(cmap, group, "equivalent", unmapped.get("code"), unmapped.get("display")))
    return out


def _match(
    cmap: dict[str, Any], group: dict[str, Any], equivalence: str, code: str | None, display: str | None
) -> dict[str, Any]:
    part: list[dict[str, Any]] = [{"name": "equivalence", "valueCode": equivalence}]
    if code:
        coding = {"system": group.get("target"), "code": code}
        if group.get("targetVersion"):
            coding["version"] = group["targetVersion"]
        if display:
            coding["display"] = display
        part.append({"name": "concept", "valueCoding": coding})
    part.append({"name": "source", "valueUri": cmap.get("url")})
    return {"name": "match", "part": part}
