"""Adapter ``fhir-document``: the record as a FHIR R4 ``document`` Bundle ready for the doctor's EDS (TM-10).

Layout (R4 documents.html): the first entry is a generated Composition (LOINC 11488-4 Consult note) with
one section per MD-D item 1..13, coded in ``kz-md-d-item`` [P]; each section has a narrative made of the
record values and entries pointing at the input resources the item was read from. The other entries are
those resources, unchanged, with ``fullUrl`` = ``base_url`` + ``Type/id`` so their relative references
resolve inside the Bundle (R4 bundle.html §3.3.1.4.1).

The Bundle is NOT signed here. The caller signs it with the doctor's key and keeps the signature with
the message (docs/mappings.md "Signing the document")::

    bundle = FhirDocumentAdapter(base).to_bundle(record)
    signed = await signing.sign_bundle(bundle, signer, "jws", {"reference": record.practitioner.person.reference})
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from fhir_server.validation.issues import Issue
from mappings.codes import CS_MDD_ITEM, MDD_ITEMS
from mappings.errors import IncompleteRecordError
from mappings.model import RemoteServiceRecord
from mappings.nehp._narrative import ITEM_LINES, xhtml
from mappings.nehp.ids import composition_id, document_id

MEDIA_TYPE = "application/fhir+json; fhirVersion=4.0"
CONSULT_NOTE = {"system": "http://loinc.org", "code": "11488-4", "display": "Consult note"}
EMPTY_REASON = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/list-empty-reason", "code": "nilknown",
                            "display": "Nil Known"}]}
SECTION_TITLES = {
    1: "Форма дистанционной медицинской услуги", 2: "Средства телекоммуникации", 3: "Пациент",
    4: "Медицинская услуга", 5: "Врач, оказавший услугу", 6: "Диагноз", 7: "Запись врача", 8: "Заключение",
    9: "План ведения", 10: "Направления", 11: "Назначение лекарственных средств",
    12: "Лист или справка временной нетрудоспособности", 13: "Направление на медико-социальную экспертизу",
}
# Billing and signature evidence are not part of the clinical document (they go to the payment mapping).
_NOT_IN_DOCUMENT = frozenset({"Provenance", "Coverage", "ChargeItem", "Claim"})
_ABSOLUTE = re.compile(r"^(https?://|urn:)")
# R4 instant: the Bundle.timestamp of a document must be one (bdl-10).
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


class FhirDocumentAdapter:
    """``fhir-document``: a document Bundle; ``base_url`` is the FHIR base of the sending server."""

    name = "fhir-document"
    media_type = MEDIA_TYPE

    def __init__(self, base_url: str = "http://localhost/fhir") -> None:
        self.base_url = base_url.rstrip("/")

    def full_url(self, key: str) -> str:
        return key if _ABSOLUTE.match(key) else f"{self.base_url}/{key}"

    def to_message(self, record: RemoteServiceRecord) -> bytes:
        return orjson.dumps(self.to_bundle(record))

    def to_bundle(self, record: RemoteServiceRecord) -> dict[str, Any]:
        """The unsigned document Bundle; raises IncompleteRecordError when the record has errors."""
        errors = [i for i in record.issues if i.is_error]
        if errors:
            raise IncompleteRecordError("the NEHP FHIR document", errors)
        timestamp = next((t for t in (record.end, record.start) if t and _INSTANT.match(t)), None)
        if timestamp is None:
            raise IncompleteRecordError("the NEHP FHIR document", [Issue(
                "error", "required", "Bundle.timestamp needs an instant (bdl-10): Encounter.period.end or .start "
                "with time and time zone", "Encounter.period")])
        composition = self._composition(record, timestamp)
        entries = [{"fullUrl": self.full_url(f"Composition/{composition['id']}"), "resource": composition}]
        entries += [{"fullUrl": self.full_url(key), "resource": resource} for key, resource in _ordered(record)]
        return {
            "resourceType": "Bundle",
            "identifier": {"system": "urn:ietf:rfc:3986", "value": document_id(record)},
            "type": "document",
            "timestamp": timestamp,
            "entry": entries,
        }

    def _composition(self, record: RemoteServiceRecord, date: str) -> dict[str, Any]:
        assert record.patient is not None and record.practitioner is not None
        author = record.practitioner.role or record.practitioner.person.reference
        composition: dict[str, Any] = {
            "resourceType": "Composition",
            "id": composition_id(record),
            "identifier": {"system": "urn:ietf:rfc:3986", "value": record.record_id},
            "status": "final" if record.status == "finished" else "preliminary",
            "type": {"coding": [CONSULT_NOTE]},
            "subject": {"reference": record.patient.reference},
            "encounter": {"reference": record.encounter},
            "date": date,
            "author": [{"reference": author}],
            "title": "Запись о дистанционной медицинской услуге",
            # The legal attester is the doctor whose EDS signs the Bundle (TM-10, AC-25).
            "attester": [{"mode": "legal", "party": {"reference": author}}],
            "section": [_section(record, item) for item in MDD_ITEMS],
        }
        if record.provider is not None:
            composition["custodian"] = {"reference": record.provider.reference}
        return composition


def _section(record: RemoteServiceRecord, item: int) -> dict[str, Any]:
    lines = ITEM_LINES[item](record)
    section: dict[str, Any] = {
        "title": f"{item}. {SECTION_TITLES[item]}",
        "code": {"coding": [{"system": CS_MDD_ITEM, "code": str(item), "display": MDD_ITEMS[item][1]}]},
        "text": {"status": "generated", "div": xhtml(lines or ["Не требовалось"])},
    }
    entries = sorted({_resource_key(s.reference) for s in record.item_sources(item) if s.reference in record.sources})
    if entries:
        section["entry"] = [{"reference": key} for key in entries]
    if not lines:
        section["emptyReason"] = EMPTY_REASON  # MD-D 10-13 are "where needed": none was needed
    return section


def _resource_key(key: str) -> str:
    return key.split("#", 1)[0]


_FIRST = ("Encounter", "Patient", "Practitioner", "PractitionerRole", "Organization")


def _ordered(record: RemoteServiceRecord) -> list[tuple[str, dict[str, Any]]]:
    """The source resources of the document: the Encounter and the people first, then the rest."""
    items = [(k, r) for k, r in record.sources.items() if r.get("resourceType") not in _NOT_IN_DOCUMENT]
    rank = {t: i for i, t in enumerate(_FIRST)}
    return sorted(items, key=lambda kr: rank.get(str(kr[1].get("resourceType")), len(_FIRST)))
