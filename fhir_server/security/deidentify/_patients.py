"""Which patient each resource belongs to, so all of one patient's dates move by the same offset (AC-19)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# [base/]Type/id[/_history/vid] -- FHIR R4 §2.3.0.1 (literal references).
LITERAL_REFERENCE = re.compile(
    r"^(?P<base>.*?/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?P<history>/_history/[A-Za-z0-9\-.]{1,64})?$"
)
# Where a resource names its patient, most specific first (the Patient compartment's usual parameters).
_PATIENT_FIELDS = ("subject", "patient", "beneficiary", "individual", "who")


def bundle_entries(resource: dict[str, Any]) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """``(fullUrl, resource)`` for the resource itself and, recursively, every Bundle entry inside it."""
    yield None, resource
    for entry in resource.get("entry", []) if resource.get("resourceType") == "Bundle" else []:
        inner = entry.get("resource")
        if isinstance(inner, dict):
            for full_url, found in bundle_entries(inner):
                yield full_url or entry.get("fullUrl"), found


@dataclass(slots=True)
class PatientIndex:
    """Maps references (``Patient/1``, absolute URLs, ``urn:uuid:`` fullUrls) to one key per patient."""

    aliases: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, resources: list[dict[str, Any]]) -> PatientIndex:
        index = cls()
        for top in resources:
            for full_url, res in bundle_entries(top):
                if res.get("resourceType") == "Patient":
                    key = f"Patient/{res['id']}" if res.get("id") else (full_url or "")
                    if full_url and key:
                        index.aliases[full_url] = key
        return index

    def patient_key(self, reference: str) -> str | None:
        if reference in self.aliases:
            return self.aliases[reference]
        match = LITERAL_REFERENCE.match(reference)
        if match and match["type"] == "Patient":
            return f"Patient/{match['id']}"
        return None

    def owner_key(self, resource: dict[str, Any], full_url: str | None) -> str:
        """The patient a resource belongs to; a resource with none is keyed by its own identity."""
        own = f"{resource.get('resourceType')}/{resource['id']}" if resource.get("id") else (full_url or "")
        if resource.get("resourceType") == "Patient":
            return own
        for name in _PATIENT_FIELDS:
            for ref in _references(resource.get(name)):
                key = self.patient_key(ref)
                if key:
                    return key
        for ref in _references({k: v for k, v in resource.items() if k != "contained"}):
            key = self.patient_key(ref)
            if key:
                return key
        return own


def _references(node: Any) -> Iterator[str]:
    """Every ``Reference.reference`` string inside ``node``, depth first in document order."""
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str):
            yield ref
        for value in node.values():
            if isinstance(value, dict | list):
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)
