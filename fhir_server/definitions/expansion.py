"""The one evaluation of ValueSet.compose into concrete codes (R4 ValueSet §4.9.5 "Value set composition").

Every user of a value set's content goes through :func:`evaluate`: the structural validator's required
bindings (``definitions/valuesets.py``), the profile validator's fallback membership
(``validation/profile/coreterm.py``), the token search modifiers ``:in`` / ``:not-in``
(``search/terminology.py``) and the terminology service's ``$expand`` / ``$validate-code`` (``terminology/``).
It lives here, at the bottom of the dependency graph, because ``terminology`` already builds on
``fhir_server.definitions`` and the server's inner layers must not import ``terminology``.

Rules (R4 §4.9.5, ValueSet.compose.include): within one include the codes selected by the ``system`` part
(all its codes, or the listed ``concept``s, narrowed by every ``filter``) and by each imported ``valueSet`` are
**intersected**; the includes are then united and the excludes (same rules) subtracted.

The result also says which code systems could not be enumerated: a system the source does not hold (SNOMED CT,
LOINC, ...) or holds only partly (content = fragment / example). ``$expand`` refuses the first kind; membership
checks answer "unknown" for codes those systems might contain.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal, Protocol

from fhir_server.definitions._files import core_resources
from fhir_server.definitions.codesystem import CodeSystemIndex, Concept, Designation

__all__ = [
    "MAX_DEPTH",
    "MAX_EXPANSION",
    "CanonicalSource",
    "ComposeResult",
    "Entry",
    "ExpansionError",
    "Source",
    "apply_filter",
    "core_source",
    "enumerable",
    "evaluate",
]

MAX_EXPANSION = 100_000
MAX_DEPTH = 16  # nested valueSet imports; deeper is refused as too costly (cycles are refused as invalid)

ExpansionIssueCode = Literal["not-found", "not-supported", "too-costly", "invalid"]

# Code systems whose definitions say they are not enumerated here (SNOMED CT stub in the core package).
_NOT_ENUMERATED = ("not-present", "supplement")


class ExpansionError(Exception):
    """A ValueSet cannot be evaluated; ``code`` is an IssueType (terminology.TerminologyError subclasses it)."""

    def __init__(self, code: ExpansionIssueCode, message: str) -> None:
        super().__init__(message)
        self.code: ExpansionIssueCode = code
        self.message = message


class Source(Protocol):
    """Where ValueSets and (indexed) CodeSystems come from."""

    def value_set(self, url: str) -> dict[str, Any] | None: ...

    def code_system(self, url: str, version: str | None = None) -> CodeSystemIndex | None: ...


class CanonicalSource:
    """Canonical resources by URL and ``url|version``; the latest registration of a URL wins.

    CodeSystem indexes are built lazily, on first use: most of the 495 core code systems are never touched.
    """

    KINDS: tuple[str, ...] = ("CodeSystem", "ValueSet")

    def __init__(self, items: Iterable[dict[str, Any]] = ()) -> None:
        self._by_type: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in self.KINDS}
        self._indexes: dict[str, CodeSystemIndex] = {}
        for item in items:
            self.register(item)

    def register(self, resource: dict[str, Any]) -> None:
        table = self._by_type.get(resource.get("resourceType", ""))
        url = resource.get("url")
        if table is None or not isinstance(url, str):
            raise ExpansionError("invalid", f"only a {' or '.join(self.KINDS)} with a url can be registered")
        table[url] = resource
        if resource.get("version"):
            table[f"{url}|{resource['version']}"] = resource
        self._indexes = {k: v for k, v in self._indexes.items() if k.split("|", 1)[0] != url}

    def _find(self, kind: str, url: str, version: str | None = None) -> dict[str, Any] | None:
        table = self._by_type[kind]
        if version is None and "|" in url:
            url, version = url.split("|", 1)
        if version is not None:
            return table.get(f"{url}|{version}")
        return table.get(url)

    def value_set(self, url: str) -> dict[str, Any] | None:
        return self._find("ValueSet", url)

    def code_system(self, url: str, version: str | None = None) -> CodeSystemIndex | None:
        """The held, enumerated code system, or None (unknown, other version, or content not-present)."""
        resource = self._find("CodeSystem", url, version)
        if resource is None or not enumerable(resource):
            return None
        key = f"{resource['url']}|{resource.get('version', '')}"
        found = self._indexes.get(key)
        if found is None:
            found = CodeSystemIndex(resource)
            self._indexes[key] = found
        return found

    def code_syntax(self, system: str) -> re.Pattern[str] | None:
        """The shape of a code of a partly held system (to tell "not in our fragment" from "malformed")."""
        return None

    def anchor_locator(self, system: str) -> Callable[[str], str | None] | None:
        """For partly held systems with a known structure: the held concept an unknown code falls under."""
        return None


def enumerable(codesystem: dict[str, Any]) -> bool:
    """False for CodeSystems whose concepts are not given (content not-present, supplements)."""
    return codesystem.get("content") not in _NOT_ENUMERATED


@cache
def core_source() -> CanonicalSource:
    """The CodeSystems and ValueSets of the R4 core package (shared, read-only)."""
    return CanonicalSource(r for r in core_resources("valuesets") if r.get("resourceType") in CanonicalSource.KINDS)


# -- the result ---------------------------------------------------------------------------------------------


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

    @property
    def enumerated(self) -> bool:
        """True when ``entries`` is the whole value set (nothing unheld, partly held or uncertainly excluded)."""
        return not (self.unheld or self.partial or self.uncertain_excludes)

    def pairs(self) -> frozenset[tuple[str, str]]:
        return frozenset(self.entries)

    def merge(self, other: ComposeResult, *, entries: bool = True) -> None:
        if entries:
            self.entries.update(other.entries)
        self.unheld |= other.unheld
        for system, anchors in other.partial.items():
            mine = self.partial.get(system, set())
            self.partial[system] = None if mine is None or anchors is None else mine | anchors
        self.uncertain_excludes |= other.uncertain_excludes


# -- evaluation ---------------------------------------------------------------------------------------------


def evaluate(source: Source, valueset: dict[str, Any], stack: tuple[str, ...] = ()) -> ComposeResult:
    """All codes of a ValueSet, from its compose (or a stored expansion when it has no compose)."""
    url = valueset.get("url", "")
    if url and url in stack:
        raise ExpansionError("invalid", f"ValueSet {url} imports itself through {' -> '.join(stack)}")
    if len(stack) >= MAX_DEPTH:
        raise ExpansionError("too-costly", f"ValueSet {url} is nested more than {MAX_DEPTH} imports deep")
    compose = valueset.get("compose")
    if compose is None:
        if "expansion" not in valueset:
            raise ExpansionError("not-supported", f"ValueSet {url} has neither a compose nor an expansion")
        return stored_expansion(valueset)
    here = (*stack, url or "(inline ValueSet)")
    result = ComposeResult()
    for include in compose.get("include", []):
        result.merge(_include(source, include, here))
    for exclude in compose.get("exclude", []):
        removed = _include(source, exclude, here)
        for key in removed.entries:
            result.entries.pop(key, None)
        result.uncertain_excludes |= removed.unheld | set(removed.partial)
    if len(result.entries) > MAX_EXPANSION:
        raise ExpansionError("too-costly", f"ValueSet {url} has more than {MAX_EXPANSION} codes")
    return result


def stored_expansion(valueset: dict[str, Any]) -> ComposeResult:
    """The codes of ``ValueSet.expansion.contains`` (nested contains flattened)."""
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


def _include(source: Source, include: dict[str, Any], stack: tuple[str, ...]) -> ComposeResult:
    """One include (or exclude): the intersection of its imported value sets and its system part."""
    parts: list[ComposeResult] = []
    for vs_url in include.get("valueSet", []):
        imported = source.value_set(vs_url)
        if imported is None:
            raise ExpansionError("not-found", f"ValueSet {vs_url} (imported by {stack[-1]}) is not known")
        parts.append(evaluate(source, imported, stack))
    if "system" in include:
        parts.append(_system_part(source, include))
    elif include.get("concept") or include.get("filter"):
        raise ExpansionError("invalid", f"ValueSet {stack[-1]}: an include with concepts or filters needs a system")
    if not parts:
        return ComposeResult()
    result = parts[0]
    for other in parts[1:]:
        result.entries = {k: v for k, v in result.entries.items() if k in other.entries}
        result.merge(other, entries=False)
    return result


def _system_part(source: Source, include: dict[str, Any]) -> ComposeResult:
    system: str = include["system"]
    result = ComposeResult()
    cs = source.code_system(system, include.get("version"))
    listed = include.get("concept")
    if listed is not None:
        # An enumerated list is definitive even for a code system we do not hold (e.g. BCP-47 languages).
        chosen: dict[str, dict[str, Any]] = {item["code"]: item for item in listed if "code" in item}
        if include.get("filter"):
            if cs is None:
                result.unheld.add(system)
                return result
            chosen = {c: item for c, item in chosen.items() if c in _filtered(cs, include["filter"])}
        for code, item in chosen.items():
            if cs is not None and cs.complete and cs.get(code) is None:
                continue  # a listed code that its (complete) code system does not define is not a member
            result.entries[(system, code)] = _listed_entry(system, item, cs)
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


def _filtered(cs: CodeSystemIndex, filters: list[dict[str, Any]]) -> set[str]:
    codes = set(cs.concepts)
    for flt in filters:
        codes &= apply_filter(cs, flt.get("property", ""), flt.get("op", ""), str(flt.get("value", "")))
    return codes


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


# -- filters (R4 ValueSet §4.9.5, filter-operator codes) ------------------------------------------------------
# ``is-a``, ``descendent-of``, ``is-not-a``, ``generalizes`` on the hierarchy (property ``concept`` or ``code``);
# ``=``, ``in``, ``not-in``, ``regex``, ``exists`` on ``code``, ``display``, ``parent``, ``child`` and any
# concept property.

_HIERARCHY_OPS = ("is-a", "descendent-of", "is-not-a", "generalizes")


def apply_filter(cs: CodeSystemIndex, prop: str, op: str, value: str) -> set[str]:
    """The codes of ``cs`` that satisfy one filter."""
    if prop in ("concept", "code") and op in _HIERARCHY_OPS:
        return _hierarchy(cs, op, value)
    test = _predicate(prop, op, value)
    return {code for code, concept in cs.concepts.items() if test(concept)}


def _hierarchy(cs: CodeSystemIndex, op: str, value: str) -> set[str]:
    concept = cs.get(value)
    if concept is None:
        below: set[str] = set()
        root: set[str] = set()
    else:
        below = set(cs.descendants(concept.code))
        root = {concept.code}
    if op == "is-a":
        return root | below
    if op == "descendent-of":
        return below
    if op == "generalizes":
        return root | (set(cs.ancestors(concept.code)) if concept else set())
    return set(cs.concepts) - root - below  # is-not-a


def _values(concept: Concept, prop: str) -> list[str]:
    if prop in ("concept", "code"):
        return [concept.code]
    if prop == "display":
        return [concept.display] if concept.display else []
    if prop == "parent":
        return list(concept.parents)
    if prop == "child":
        return list(concept.children)
    return [_as_text(v) for v in concept.property_values(prop)]


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return str(value.get("code", ""))
    return str(value)


def _predicate(prop: str, op: str, value: str) -> Callable[[Concept], bool]:
    if op == "=":
        return lambda c: value in _values(c, prop)
    if op in ("in", "not-in"):
        wanted = {v.strip() for v in value.split(",")}
        inside = op == "in"
        return lambda c: bool(wanted.intersection(_values(c, prop))) is inside
    if op == "regex":
        try:
            pattern = re.compile(value)
        except re.error as exc:
            raise ExpansionError("invalid", f"filter regex {value!r} is not valid: {exc}") from exc
        return lambda c: any(pattern.fullmatch(v) for v in _values(c, prop))
    if op == "exists":
        expected = value.strip().lower() == "true"
        return lambda c: bool(_values(c, prop)) is expected
    raise ExpansionError("not-supported", f"filter operator {op!r} on property {prop!r} is not supported")
