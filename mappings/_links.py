"""Which input resources belong to the service: the Encounter's own data and the narrative sections."""

from __future__ import annotations

import html
import re

from fhir_server.validation.issues import Issue
from mappings._build import Build
from mappings._fhir import Cursor, refers_to
from mappings.codes import CS_MDD_ITEM

# Where each resource type names its Encounter (R4: X.encounter; DocumentReference.context.encounter;
# ChargeItem.context; Claim.item.encounter).
_ENCOUNTER_PATHS: dict[str, tuple[str, ...]] = {
    "DocumentReference": ("context", "encounter"),
    "ChargeItem": ("context",),
    "Claim": ("item", "encounter"),
}
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def _encounter_refs(resource: Cursor) -> list[Cursor]:
    steps = _ENCOUNTER_PATHS.get(resource.resource_type, ("encounter",))
    level = [resource]
    for step in steps:
        level = [child for node in level for child in node.children(step)]
    return level


def linked(b: Build, resource_type: str, encounter: Cursor, patient_key: str | None) -> list[Cursor]:
    """Resources of a type that name this Encounter, or name no Encounter but the same patient.

    The caller assembles the input set for one service, so a resource without an encounter reference is
    taken as part of it when its subject is the service's patient; one that names another Encounter is
    left out with an information issue.
    """
    found = []
    for resource in b.resources.of_type(resource_type):
        refs = _encounter_refs(resource)
        if any(refers_to(r, encounter.key) for r in refs):
            found.append(resource)
        elif refs:
            b.issues.append(Issue("information", "informational",
                                  f"{resource.reference} names another Encounter and is not part of this record",
                                  f"{resource_type}.encounter"))
        elif patient_key is not None and refers_to(resource.child("subject") or resource.child("patient"),
                                                   patient_key):
            found.append(resource)
    return found


def narrative_text(b: Build, key: str, narrative: Cursor | None) -> str | None:
    """Plain text of a Narrative's XHTML ``div`` (tags dropped, entities decoded, spaces folded)."""
    div = narrative.child("div") if narrative is not None else None
    if div is None or not isinstance(div.node, str):
        return None
    text = _SPACE.sub(" ", html.unescape(_TAG.sub(" ", div.node))).strip()
    if not text:
        return None
    b.take(key, div, "narrative XHTML reduced to plain text")
    return text


def section(compositions: list[Cursor], item: int) -> Cursor | None:
    """The Composition section coded with MD-D ``item`` (code system kz-md-d-item)."""
    for composition in compositions:
        for sec in composition.children("section"):
            code = sec.child("code")
            coding = code.coding(CS_MDD_ITEM) if code is not None else None
            if coding is not None and coding.node.get("code") == str(item):
                return sec
    return None
