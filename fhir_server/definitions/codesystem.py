"""A CodeSystem resource indexed for fast lookups: concepts by code, hierarchy, properties, designations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Properties that describe the hierarchy rather than the concept (R4 concept-properties).
HIERARCHY_PROPERTIES = ("parent", "child")
_VALUE_KEYS = (
    "valueCode", "valueCoding", "valueString", "valueInteger", "valueBoolean", "valueDateTime", "valueDecimal",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Designation:
    language: str | None
    value: str
    use: dict[str, Any] | None = None

    def to_fhir(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.language:
            out["language"] = self.language
        if self.use:
            out["use"] = self.use
        out["value"] = self.value
        return out


@dataclass(slots=True)
class Concept:
    code: str
    display: str | None
    definition: str | None = None
    designations: tuple[Designation, ...] = ()
    properties: list[tuple[str, str, Any]] = field(default_factory=list)  # (code, value key, value)
    parents: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)

    def property_values(self, name: str) -> list[Any]:
        return [value for code, _, value in self.properties if code == name]

    @property
    def abstract(self) -> bool:
        # notSelectable (R4 concept-properties) or the older "abstract" flag some core systems use.
        return any(v is True for v in self.property_values("notSelectable") + self.property_values("abstract"))

    @property
    def inactive(self) -> bool:
        status = self.property_values("status")
        return any(v is True for v in self.property_values("inactive")) or any(
            s in ("retired", "inactive") for s in status
        )


class CodeSystemIndex:
    """One CodeSystem (a single version), with the hierarchy from nesting and parent/child properties."""

    def __init__(self, resource: dict[str, Any]) -> None:
        self.resource = resource
        self.url: str = resource.get("url", "")
        self.version: str | None = resource.get("version")
        self.name: str = resource.get("title") or resource.get("name") or self.url
        self.content: str = resource.get("content", "complete")
        self.case_sensitive: bool = resource.get("caseSensitive", True) is not False
        self.concepts: dict[str, Concept] = {}
        self._descendants: dict[str, frozenset[str]] = {}
        self._add(resource.get("concept", []), None)
        self._link_properties()
        self._folded = {} if self.case_sensitive else {c.casefold(): c for c in self.concepts}

    @property
    def complete(self) -> bool:
        """False for fragment/example content: a code absent here may still exist (R4 codesystem-content-mode)."""
        return self.content == "complete"

    def _add(self, concepts: list[dict[str, Any]], parent: str | None) -> None:
        for raw in concepts:
            code = raw.get("code")
            if not isinstance(code, str):
                continue
            concept = self.concepts.get(code) or Concept(
                code=code,
                display=raw.get("display"),
                definition=raw.get("definition"),
                designations=tuple(
                    Designation(d.get("language"), d["value"], d.get("use"))
                    for d in raw.get("designation", [])
                    if isinstance(d.get("value"), str)
                ),
                properties=[
                    (p["code"], key, p[key]) for p in raw.get("property", []) for key in _VALUE_KEYS if key in p
                ],
            )
            self.concepts[code] = concept
            if parent is not None:
                self._link(parent, code)
            self._add(raw.get("concept", []), code)

    def _link(self, parent: str, child: str) -> None:
        if parent not in self.concepts[child].parents:
            self.concepts[child].parents.append(parent)
        if parent in self.concepts and child not in self.concepts[parent].children:
            self.concepts[parent].children.append(child)

    def _link_properties(self) -> None:
        # Flat code systems may state the hierarchy with parent/child properties instead of nesting.
        for concept in list(self.concepts.values()):
            for value in concept.property_values("parent"):
                if value in self.concepts:
                    self._link(str(value), concept.code)
            for value in concept.property_values("child"):
                if value in self.concepts:
                    self._link(concept.code, str(value))

    def get(self, code: str) -> Concept | None:
        found = self.concepts.get(code)
        if found is None and not self.case_sensitive:
            real = self._folded.get(code.casefold())
            found = self.concepts.get(real) if real else None
        return found

    def descendants(self, code: str) -> frozenset[str]:
        """All codes below ``code`` (not including it); cached per code."""
        cached = self._descendants.get(code)
        if cached is not None:
            return cached
        seen: set[str] = set()
        stack = list(self.concepts[code].children) if code in self.concepts else []
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(self.concepts[current].children)
        result = frozenset(seen)
        self._descendants[code] = result
        return result

    def ancestors(self, code: str) -> frozenset[str]:
        seen: set[str] = set()
        stack = list(self.concepts[code].parents) if code in self.concepts else []
        while stack:
            current = stack.pop()
            if current not in seen and current in self.concepts:
                seen.add(current)
                stack.extend(self.concepts[current].parents)
        return frozenset(seen)

    def property_type(self, name: str) -> str | None:
        for prop in self.resource.get("property", []):
            if prop.get("code") == name:
                return str(prop.get("type"))
        return None
