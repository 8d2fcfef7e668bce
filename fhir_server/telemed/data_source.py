"""Where collected data come from (AC-05): the owner's words, documents the owner provides, medical records.

Every write of a resource by a patient or representative, or by a medical worker or organisation, is tagged
with its source in ``meta.tag`` (system ``https://fhir.kzfhir.kz/CodeSystem/kz-data-source``), before it is
validated and stored, on every write path (the write plan calls ``tag_source`` for each resource it writes):

* written by the patient or their representative: ``patient-document`` for a document or image
  (DocumentReference, Media, Binary, or a resource carrying an inline attachment), else ``patient-reported``
  (their own words: a message, a reading, an answer). Any other source they claim is replaced: a patient never
  writes a medical record (AC-25);
* written by a medical worker or an organisation's system: the source they declare (a doctor transcribing the
  patient's complaints declares ``patient-reported``), else ``medical-record``.

Consents, Contracts, Bundles (signed documents keep their bytes), Subscriptions and non-patient roles' writes are
left as they are. Searchable with ``_tag``; shown in the data-subject report's sources (AC-16).
"""

from __future__ import annotations

from typing import Any

from fhir_server.security.context import RequestContext
from fhir_server.security.roles import PATIENT, PRACTITIONER, RELATED_PERSON, SYSTEM
from fhir_server.telemed.attachments import attachments

SYSTEM_URL = "https://fhir.kzfhir.kz/CodeSystem/kz-data-source"
CODES = {"patient-reported": "The patient's own words", "patient-document": "A document the patient provided",
         "medical-record": "A medical record"}
_UNTAGGED = frozenset({"Consent", "Contract", "Bundle", "Subscription", "AuditEvent", "Provenance"})
_DOCUMENTS = frozenset({"DocumentReference", "Media", "Binary"})


def _source(ctx: RequestContext, resource: dict[str, Any], declared: str | None) -> str | None:
    if ctx.role in (PATIENT, RELATED_PERSON):
        has_document = resource.get("resourceType") in _DOCUMENTS or any(True for _ in attachments(resource))
        return "patient-document" if has_document else "patient-reported"
    if ctx.role in (PRACTITIONER, SYSTEM):
        return declared if declared in CODES else "medical-record"
    return None


def tag_source(ctx: RequestContext, resource: dict[str, Any]) -> None:
    """Set the resource's kz-data-source tag in place (one tag of that system, the others kept)."""
    if resource.get("resourceType") in _UNTAGGED:
        return
    raw = resource.get("meta")
    meta: dict[str, Any] = raw if isinstance(raw, dict) else {}
    listed = meta.get("tag")
    tags: list[dict[str, Any]] = [t for t in listed if isinstance(t, dict)] if isinstance(listed, list) else []
    declared = next((str(t.get("code")) for t in tags if t.get("system") == SYSTEM_URL), None)
    source = _source(ctx, resource, declared)
    if source is None:
        return
    kept = [t for t in tags if t.get("system") != SYSTEM_URL]
    resource["meta"] = {**meta, "tag": [*kept, {"system": SYSTEM_URL, "code": source, "display": CODES[source]}]}
