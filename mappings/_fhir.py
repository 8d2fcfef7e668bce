"""Reading plain-JSON FHIR resources while remembering where each value sits (the trace of the record).

A :class:`Cursor` is a node of an input resource plus its FHIRPath with explicit indices
(``Encounter.extension[1].valueCoding.code``); :class:`ResourceSet` resolves references inside the
input set, including contained resources (R4 references.html §2.3.0.4, ``#id``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mappings.model import Source

# "Patient/1", "Patient/1/_history/2", "https://host/fhir/Patient/1" → ("Patient", "1") (R4 references.html).
_LITERAL = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$")


def canonical_key(reference: str) -> str:
    """``Type/id`` for a relative, versioned or absolute literal reference; other strings unchanged."""
    match = _LITERAL.search(reference)
    return f"{match[1]}/{match[2]}" if match else reference


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


@dataclass(frozen=True, slots=True)
class Cursor:
    key: str  # the input key of the resource this node belongs to
    node: Any
    path: str
    root: dict[str, Any]

    @classmethod
    def of(cls, key: str, resource: dict[str, Any]) -> Cursor:
        return cls(key, resource, str(resource.get("resourceType", "Resource")), resource)

    @property
    def source(self) -> Source:
        return Source(self.key, self.path)

    @property
    def reference(self) -> str:
        """The input key, or ``key#id`` for a contained resource (R4 references.html §2.3.0.4)."""
        if self.node is self.root or not isinstance(self.node, dict):
            return self.key
        return f"{self.key}#{self.node.get('id', '')}"

    @property
    def resource_type(self) -> str:
        return str(self.node.get("resourceType", "")) if isinstance(self.node, dict) else ""

    def children(self, name: str) -> list[Cursor]:
        value = self.node.get(name) if isinstance(self.node, dict) else None
        if isinstance(value, list):
            return [Cursor(self.key, v, f"{self.path}.{name}[{i}]", self.root) for i, v in enumerate(value)
                    if _present(v)]
        return [Cursor(self.key, value, f"{self.path}.{name}", self.root)] if _present(value) else []

    def child(self, *names: str) -> Cursor | None:
        """The first present node along ``names`` (each step takes the first element of a list)."""
        cursor: Cursor | None = self
        for name in names:
            found = cursor.children(name) if cursor else []
            cursor = found[0] if found else None
        return cursor

    def text(self, *names: str) -> str | None:
        found = self.child(*names)
        return found.node if found is not None and isinstance(found.node, str) else None

    def extension(self, url: str) -> Cursor | None:
        return next((e for e in self.children("extension") if e.node.get("url") == url), None)

    def ext_value(self, url: str, *types: str) -> Cursor | None:
        ext = self.extension(url)
        if ext is None:
            return None
        return next((v for t in types if (v := ext.child(f"value{t}")) is not None), None)

    def ext_coding(self, url: str) -> Cursor | None:
        """The ``valueCoding`` of an extension when it has a system and a code (else the value is unusable)."""
        value = self.ext_value(url, "Coding")
        if value is None or not isinstance(value.node, dict):
            return None
        ok = isinstance(value.node.get("system"), str) and isinstance(value.node.get("code"), str)
        return value if ok else None

    def coding(self, system: str) -> Cursor | None:
        """The first Coding of this CodeableConcept with ``system`` and a code."""
        return next((c for c in self.children("coding") if c.node.get("system") == system
                     and isinstance(c.node.get("code"), str)), None)

    def identifier(self, system: str) -> Cursor | None:
        """The ``value`` node of the first identifier with ``system``."""
        ident = next((i for i in self.children("identifier") if i.node.get("system") == system), None)
        return ident.child("value") if ident else None


class ResourceSet:
    """The input ``reference -> resource`` dict, addressable by any literal form of the reference."""

    def __init__(self, resources: Mapping[str, dict[str, Any]]) -> None:
        self._items = dict(resources)
        self._index: dict[str, str] = {}
        for key, resource in self._items.items():
            self._index[key] = key
            self._index.setdefault(canonical_key(key), key)
            rid, rtype = resource.get("id"), resource.get("resourceType")
            if isinstance(rid, str) and isinstance(rtype, str):
                self._index.setdefault(f"{rtype}/{rid}", key)

    def __iter__(self) -> Iterator[Cursor]:
        return (Cursor.of(key, res) for key, res in self._items.items())

    def get(self, reference: str) -> Cursor | None:
        key = self._index.get(reference) or self._index.get(canonical_key(reference))
        return Cursor.of(key, self._items[key]) if key is not None else None

    def resolve(self, ref: Cursor | None) -> Cursor | None:
        """The resource a Reference element points to: contained (``#id``) or in the input set."""
        if ref is None or not isinstance(ref.node, dict):
            return None
        target = ref.node.get("reference")
        if not isinstance(target, str):
            return None
        if target.startswith("#"):
            return self._contained(ref, target[1:])
        return self.get(target)

    def _contained(self, ref: Cursor, local_id: str) -> Cursor | None:
        container = Cursor.of(ref.key, ref.root)
        return next((c for c in container.children("contained") if c.node.get("id") == local_id), None)

    def of_type(self, resource_type: str) -> list[Cursor]:
        return [c for c in self if c.resource_type == resource_type]


def refers_to(ref: Cursor | None, key: str) -> bool:
    """Whether a Reference element names the resource stored under ``key``."""
    if ref is None or not isinstance(ref.node, dict) or not isinstance(ref.node.get("reference"), str):
        return False
    return canonical_key(ref.node["reference"]) == canonical_key(key)
