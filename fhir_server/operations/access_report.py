"""``Patient/[id]/$access-report``: who accessed the patient's data in a period, as a document signed with the
organisation's EDS, for a complaint to the personal-data protection authority (AC-21).

The lines are the patient's access log (``$access-log``, the hash-chained audit trail, every access and refused
attempt, deliveries included) of the period (``_since``, ``_until`` or ``date``, as for ``$access-log``). The
document is a ``collection`` Bundle: a Composition naming the patient, the period, when and by whom it was
produced, then one AuditEvent per line (the patient's view: no network addresses or token ids). Its
``Bundle.signature`` is a CAdES detached signature (``application/pkcs7-signature``) over the canonical Bundle
(R4 §2.6.2.6, without ``id``, ``meta`` and ``signature``) with the key of ``KZFHIR_REPORT_SIGNING_KEY``; anyone can
check it (``signing.fhir.verify_fhir_signature``, or ``Bundle/$verify-signature`` after storing it).

Who may ask: the patient, a verified representative, and auditors or admins by the operation's name. Every
report is itself audited like ``$access-log``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from fhir_server.config import Settings
from fhir_server.errors import FhirError
from fhir_server.fhirtime import format_instant
from fhir_server.interactions.base import FhirResponse
from fhir_server.jsonio import dumps
from fhir_server.operations.access_log import scan, window_of
from fhir_server.operations.access_log_view import patient_view
from fhir_server.operations.patient_ops import open_patient_operation, reject_unknown
from fhir_server.operations.registry import OperationCall, operation
from fhir_server.search.dates import MAX_TIME, MIN_TIME
from signing import Signer, load_signer
from signing.certificates import name_text
from signing.fhir import sign_bundle

KNOWN = frozenset({"_since", "_until", "date"})
MAX_LINES = 10_000
REPORT_TYPE = {"coding": [{"system": "https://fhir.kzfhir.kz/CodeSystem/kz-report-type", "code": "access-report",
                           "display": "Personal data access report"}], "text": "Personal data access report (AC-21)"}


@cache
def _signer(key: Path, cert: Path | None, password: str | None) -> Signer:
    return load_signer(key, cert, password=password)


def signer_for(settings: Settings) -> Signer | None:
    if settings.report_signing_key is None:
        return None
    password = settings.report_signing_password.get_secret_value() if settings.report_signing_password else None
    return _signer(settings.report_signing_key, settings.report_signing_cert, password)


def report_bundle(patient_id: str, events: list[dict[str, Any]], low: int, high: int, signer_name: str
                  ) -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    lines = [{"fullUrl": f"urn:uuid:{e.get('id')}", "resource": patient_view(e)} for e in events]
    period = {k: format_instant(v) for k, v in (("start", low), ("end", high)) if v not in (MIN_TIME, MAX_TIME)}
    refused = sum(1 for e in events if str(e.get("outcome")) != "0")
    summary = (f"{len(events)} accesses to the data of Patient/{patient_id}"
               f"{' from ' + period['start'] if 'start' in period else ''}"
               f"{' until ' + period['end'] if 'end' in period else ''}, {refused} of them refused or failed.")
    composition: dict[str, Any] = {
        "resourceType": "Composition", "id": str(uuid.uuid4()), "status": "final", "type": REPORT_TYPE,
        "subject": {"reference": f"Patient/{patient_id}"}, "date": now, "author": [{"display": signer_name}],
        "title": "Отчёт о доступе к персональным медицинским данным / Personal data access report",
        "section": [{"title": "Accesses", "text": {"status": "generated",
                                                   "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{summary}</div>'},
                     "entry": [{"reference": line["fullUrl"]} for line in lines]}]}
    if period:
        composition["event"] = [{"period": period}]
    return {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "collection",
            "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"}, "timestamp": now,
            "entry": [{"fullUrl": f"urn:uuid:{composition['id']}", "resource": composition}, *lines]}


@operation("access-report", levels=("instance",), types=("Patient",))
async def access_report(call: OperationCall) -> FhirResponse:
    reject_unknown(call, KNOWN)
    window = window_of(call.params())
    signer = signer_for(call.services.settings)
    if signer is None:
        raise FhirError("not_implemented", "no report signing key is configured (KZFHIR_REPORT_SIGNING_KEY): an "
                        "access report is only issued signed (AC-21)", code="not-supported")
    gate = await open_patient_operation(call)
    events, more = await scan(call.access.records, f"Patient/{gate.patient_id}", window, MAX_LINES, None, True)
    if more is not None:
        raise FhirError("too_large", f"more than {MAX_LINES} accesses in the period: ask for a shorter one",
                        code="too-costly", expression="_since")
    await gate.done()
    name = name_text(signer.signing_cert.subject)
    bundle = report_bundle(gate.patient_id, events, window.low, window.high, name)
    signed = await sign_bundle(bundle, signer, "cms", {"display": name})
    return FhirResponse(200, dumps(signed, pretty=call.pretty), {"Cache-Control": "no-store"})
