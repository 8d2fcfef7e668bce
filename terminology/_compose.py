"""Evaluate ValueSet.compose into concrete codes (R4 ValueSet §4.9.5 "Value set composition").

The result also says which code systems could not be enumerated: a system this server does not hold
(SNOMED CT, LOINC, ...) or holds only partly (content = fragment / example). ``$expand`` refuses the first
kind; membership checks answer "unknown" for codes those systems might contain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from terminology._codesystem import CodeSystemIndex, Designation
from terminology._filters import apply_filter
from terminology._registry import Registry
from terminology.errors import TerminologyError

MAX_EXPANSION = 100_000


@dataclass(frozen=True, slots=True)
class Entry:
    system: str
    version: str | None
    code: str
    display: str | None
    designations: tuple[Designation, ...] = ()
    abstract: bool = False
    inactive: bool = False


@dataclass(slots=True)
class ComposeResult:
    entries: dict[tuple[str, str], Entry] = field(default_factory=dict)
    unheld: set[str] = field(default_factory=set)  # included systems we cannot enumerate at all
    # Included systems held only in part -> the held concepts under which an unknown code would also be
    # included (hierarchical includes), or None when any unknown code might be.
    partial: dict[str, set[str] | None] = field(default_factory=dict)
    uncertain_excludes: set[str] = field(default_factory=set)

    def merge(self, other: ComposeResult, *, entries: bool = True) -> None:
        if entries:
            self.entries.update(other.entries)
        self.unheld |= other.unheld
        for system, anchors in other.partial.items():
            mine = self.partial.get(system, set())
            self.partial[system] = None if mine is None or anchors is None else mine | anchors
        self.uncertain_excludes |= other.uncertain_excludes


def evaluate(registry: Registry, valueset: dict[str, Any], stack: tuple[str, ...] = ()) -> ComposeResult:
    """All codes of a ValueSet, from its compose (or a stored expansion when it has no compose)."""
    url = valueset.get("url", "")
    if url in stack:
        raise TerminologyError("invalid", f"ValueSet {url} imports itself through {' -> '.join(stack)}")
    compose = valueset.get("compose")
    if compose is None:
        return _stored_expansion(valueset)
    result = ComposeResult()
    for include in compose.get("include", []):
        result.merge(_include(registry, include, (*stack, url)))
    for exclude in compose.get("exclude", []):
        removed = _include(registry, exclude, (*stack, url))
        for key in removed.entries:
            result.entries.pop(key, None)
        result.uncertain_excludes |= removed.unheld | set(removed.partial)
    if len(result.entries) > MAX_EXPANSION:
        raise TerminologyError("too-costly", f"ValueSet {url} has more than {MAX_EXPANSION} codes")
    return result


def _stored_expansion(valueset: dict[str, Any]) -> ComposeResult:
    result = ComposeResult()
    for item in _flatten(valueset.get("expansion", {}).get("contains", [])):
        if "system" in item and "code" in item:
            result.entries[(item["system"], item["code"])] = Entry(
                item["system"], item.get("version"), item["code"], item.get("display"),
                abstract=bool(item.get("abstract")), inactive=bool(item.get("inactive")),
            )  # fmt: skip
    return result


def _flatten(contains: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in contains:
        out.append(item)
        out.extend(_flatten(item.get("contains", [])))
    return out


def _include(registry: Registry, include: dict[str, Any], stack: tuple[str, ...]) -> ComposeResult:
    """One include (or exclude): the intersection of its imported value sets and its system part."""
    parts: list[ComposeResult] = []
    for vs_url in include.get("valueSet", []):
        imported = registry.value_set(vs_url)
        if imported is None:
            raise TerminologyError("not-found", f"ValueSet {vs_url} (imported by {stack[-1]}) is not known")
        parts.append(evaluate(registry, imported, stack))
    if "system" in include:
        parts.append(_system_part(registry, include))
    if not parts:
        return ComposeResult()
    result = parts[0]
    for other in parts[1:]:
        result.entries = {k: v for k, v in result.entries.items() if k in other.entries}
        result.merge(other, entries=False)
    return result


def _system_part(registry: Registry, include: dict[str, Any]) -> ComposeResult:
    system: str = include["system"]
    result = ComposeResult()
    cs = registry.code_system(system, include.get("version"))
    listed = include.get("concept")
    if listed is not None:
        # An enumerated list is definitive even for a code system we do not hold (e.g. BCP-47 languages).
        for item in listed:
            if cs is not None and cs.complete and cs.get(item["code"]) is None:
                continue  # a listed code that its (complete) code system does not define is not a member
            result.entries[(system, item["code"])] = _listed_entry(system, item, cs)
        return result
    if cs is None:
        result.unheld.add(system)
        return result
    codes: set[str] | None = None
    anchors: set[str] | None = set(cs.concepts)
    for flt in include.get("filter", []):
        prop, op, value = flt.get("property", ""), flt.get("op", ""), str(flt.get("value", ""))
        matched = apply_filter(cs, prop, op, value)
        codes = matched if codes is None else codes & matched
        anchors = _filter_anchors(anchors, prop, op, value, matched)
    for code in cs.concepts if codes is None else [c for c in cs.concepts if c in codes]:
        result.entries[(system, code)] = _entry(cs, code)
    if not cs.complete:
        result.partial[system] = anchors
    return result


def _filter_anchors(
    anchors: set[str] | None, prop: str, op: str, value: str, matched: set[str]
) -> set[str] | None:
    """Where unknown codes of a partly held system would be included: below the concepts is-a selected."""
    if anchors is None or prop not in ("concept", "code") or op not in ("is-a", "descendent-of"):
        return None
    below = matched | {value} if op == "descendent-of" else matched
    return anchors & below


def _entry(cs: CodeSystemIndex, code: str) -> Entry:
    concept = cs.concepts[code]
    return Entry(cs.url, cs.version, code, concept.display, concept.designations, concept.abstract, concept.inactive)


def _listed_entry(system: str, item: dict[str, Any], cs: CodeSystemIndex | None) -> Entry:
    concept = cs.get(item["code"]) if cs else None
    designations = tuple(
        Designation(d.get("language"), d["value"], d.get("use")) for d in item.get("designation", []) if "value" in d
    )
    if concept is None:
        return Entry(system, cs.version if cs else None, item["code"], item.get("display"), designations)
    return Entry(
        system, cs.version if cs else None, concept.code, item.get("display") or concept.display,
        designations or concept.designations, concept.abstract, concept.inactive,
    )  # fmt: skip
