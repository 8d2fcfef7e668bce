"""Adapter ``json``: the record as the JSON message of ``schema-v1.json`` [P] (TM-11, MD-D 1-13).

The official NEHP format is not public (kz-domain.md §3), so this is our proposed, versioned schema:
IIN/BIN as 12-digit strings, ICD-10 and KZ codes with their Russian displays, FHIR date/dateTime
strings copied as sent, and references back to the source resources. Keys are camelCase, absent optional
values are omitted (never null), and keys are sorted so equal records give equal bytes.
"""

from __future__ import annotations

from typing import Any

import orjson

from fhir_server.validation.issues import Issue
from mappings.errors import IncompleteRecordError
from mappings.model import (
    Coded,
    Concept,
    Diagnosis,
    DisabilityDocument,
    Indicator,
    Person,
    Prescription,
    Referral,
    RemoteServiceRecord,
    SignatureRef,
)
from mappings.nehp.ids import document_id
from mappings.nehp.schema import SCHEMA_ID, validate

SCHEMA_VERSION = "1.0.0"
MEDIA_TYPE = "application/vnd.kzfhir.nehp-record+json; version=1"

Json = dict[str, Any]


def _compact(obj: Json) -> Json:
    return {k: v for k, v in obj.items() if v is not None}


def _coded(c: Coded | None) -> Json | None:
    return _compact({"system": c.system, "code": c.code, "display": c.display}) if c is not None else None


def _concept(c: Concept | None) -> Json | None:
    return _compact({"coding": _coded(c.coding), "text": c.text}) if c is not None else None


def _person(p: Person) -> Json:
    return _compact({"iin": p.iin, "family": p.family, "given": p.given, "patronymic": p.patronymic})


def _diagnosis(d: Diagnosis) -> Json:
    return _compact({"icd10": _coded(d.icd10), "kind": _coded(d.kind), "type": _coded(d.type),
                     "character": _coded(d.character), "rank": d.rank, "condition": d.condition})


def _indicator(i: Indicator) -> Json:
    return _compact({"code": _concept(i.code), "value": i.value, "unit": i.unit, "effective": i.effective,
                     "interpretation": _concept(i.interpretation), "observation": i.reference})


def _referral(r: Referral) -> Json:
    return _compact({"request": r.reference, "identifier": r.identifier, "kind": _concept(r.kind),
                     "service": _concept(r.service), "authoredOn": r.authored_on, "reasonIcd10": list(r.reasons)})


def _prescription(p: Prescription) -> Json:
    return _compact({"request": p.reference, "medication": _concept(p.medication), "dosage": p.dosage,
                     "authoredOn": p.authored_on})


def _disability(d: DisabilityDocument) -> Json:
    return _compact({"document": d.reference, "kind": _coded(d.kind), "action": _coded(d.action),
                     "number": d.number, "start": d.start, "end": d.end})


def _signature(s: SignatureRef) -> Json:
    return _compact({"provenance": s.provenance, "target": s.target, "who": s.who, "when": s.when,
                     "sigFormat": s.sig_format})


def _clinical(r: RemoteServiceRecord) -> Json:
    """MD-D items 1-13; the caller has checked that the mandatory ones are present."""
    assert r.patient is not None and r.practitioner is not None and r.note is not None and r.plan is not None
    practitioner = _person(r.practitioner.person) | _compact({"specialty": _concept(r.practitioner.specialty)})
    return {
        "form": _coded(r.form), "channel": _coded(r.channel), "patient": _person(r.patient),
        "service": _coded(r.service), "practitioner": practitioner,
        "diagnoses": [_diagnosis(d) for d in r.diagnoses],
        "note": _compact({"text": r.note.text, "indicators": [_indicator(i) for i in r.note.indicators]}),
        "conclusion": r.conclusion,
        "plan": _compact({"text": r.plan.text, "nextVisitDate": r.plan.next_visit}),
        "referrals": [_referral(x) for x in r.referrals],
        "prescriptions": [_prescription(x) for x in r.prescriptions],
        "disability": [_disability(x) for x in r.disability],
        "mseReferrals": [_referral(x) for x in r.mse_referrals],
    }


def to_json(record: RemoteServiceRecord) -> Json:
    """The message as a dict (validated against schema-v1); raises IncompleteRecordError on record errors."""
    errors = [i for i in record.issues if i.is_error]
    if errors:
        raise IncompleteRecordError("the NEHP JSON message", errors)
    provider = record.provider
    message = _compact({
        "schema": SCHEMA_ID, "schemaVersion": SCHEMA_VERSION, "recordVersion": record.version,
        "recordId": record.record_id, "documentId": document_id(record), "nehpId": record.nehp_id,
        "source": _compact({"encounter": record.encounter, "versionId": record.encounter_version}),
        "status": record.status, "period": _compact({"start": record.start, "end": record.end}),
        "provider": _compact({"bin": provider.bin, "name": provider.name, "moCode": provider.mo_code})
        if provider is not None else None,
        "fundingSource": _coded(record.funding),
        **_clinical(record),
        "signatures": [_signature(s) for s in record.signatures],
    })
    problems = validate(message)
    if problems:  # e.g. a malformed dateTime in an input that skipped the server's validation
        raise IncompleteRecordError("the NEHP JSON message",
                                    [Issue("error", "value", f"{SCHEMA_ID}: {p}") for p in problems])
    return message


class JsonMessageAdapter:
    """``json``: UTF-8 JSON of :func:`to_json` with sorted keys."""

    name = "json"
    media_type = MEDIA_TYPE

    def to_message(self, record: RemoteServiceRecord) -> bytes:
        return orjson.dumps(to_json(record), option=orjson.OPT_SORT_KEYS)
