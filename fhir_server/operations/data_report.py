"""``Patient/{id}/$data-report`` (AC-16): the answer to an information request, as ``Parameters``.

AC-16 asks to confirm that data exist and to state the purposes, sources, collection and
processing methods, the list of data, and the processing and retention periods. The report gives:

| parameter | content (parts) | from |
|---|---|---|
| ``dataHeld`` | true when anything is held | compartment scan |
| ``data`` | ``type``, ``count``, ``firstUpdated``, ``lastUpdated`` | compartment + Tasks |
| ``purpose`` | ``code``, ``basis`` (declared/consent/used), ``consent`` / ``times`` | statement, Consents |
| ``source`` | authors (``who``, ``role``, ``organization``, ``count``); ``meta.source`` | audit, records |
| ``collectionMethod`` | ``method``, ``basis`` (observed/declared) | audit roles, statement |
| ``processingMethod``, ``processingPeriod``, ``retentionPeriod`` | text | statement |

The processing statement is data: ``operations/data/processing-statement.json``. The audit trail
is read up to ``AUDIT_LIMIT`` events (``auditEventsExamined``, ``auditTrailComplete``). Access:
the patient, their verified representative, and admins answering a request (no content of the
records is shown, only counts and provenance).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from fhir_server.interactions.base import FhirResponse
from fhir_server.jsonio import dumps
from fhir_server.operations.data_holdings import Holdings, Trail, holdings, trail
from fhir_server.operations.patient_ops import now_instant, open_patient_operation, reject_unknown
from fhir_server.operations.registry import OperationCall, operation
from fhir_server.security.audit import codes as c

AUDIT_LIMIT = 10_000
ROLE_METHODS = {
    "practitioner": "Entered by medical workers",
    "system": "Received from the information systems of health organisations",
    "patient": "Entered by the patient",
    "related-person": "Entered by the patient's representative",
    "admin": "Registered by an administrator (e.g. a request received on paper)",
    "legal-exception": "Entered under a legal exception",
}


@cache
def statement() -> dict[str, Any]:
    path = resources.files("fhir_server.operations").joinpath("data/processing-statement.json")
    text = path.read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _part(name: str, kind: str, value: Any) -> dict[str, Any]:
    return {"name": name, kind: value}


def _data(held: Holdings) -> list[dict[str, Any]]:
    out = []
    for resource_type, item in sorted(held.types.items()):
        parts = [_part("type", "valueCode", resource_type), _part("count", "valueInteger", item.count)]
        if item.first:
            parts.append(_part("firstUpdated", "valueInstant", item.first))
        if item.last:
            parts.append(_part("lastUpdated", "valueInstant", item.last))
        out.append({"name": "data", "part": parts})
    return out


def _purpose(system: str, code: str, basis: str, *extra: dict[str, Any]) -> dict[str, Any]:
    coding = {"system": system, "code": code} if system else {"code": code}
    parts = [_part("code", "valueCoding", coding), _part("basis", "valueCode", basis), *extra]
    return {"name": "purpose", "part": parts}


def _purposes(held: Holdings, used: Trail, declared: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def described(p: dict[str, Any]) -> dict[str, Any]:
        return _part("description", "valueString", p["description"])

    out = [_purpose(c.ACT_REASON, p["code"], "declared", described(p)) for p in declared]
    for (system, code), consents in sorted(held.consent_purposes.items()):
        refs = [_part("consent", "valueReference", {"reference": ref}) for ref in sorted(consents)]
        out.append(_purpose(system, code, "consent", *refs))
    for code, times in sorted(used.purposes.items()):
        out.append(_purpose(c.ACT_REASON, code, "used", _part("times", "valueInteger", times)))
    return out


def _sources(held: Holdings, used: Trail) -> list[dict[str, Any]]:
    out = []
    for (who, role, organization), count in sorted(used.authors.items()):
        parts = [_part("kind", "valueCode", "author"), _part("who", "valueString", who or "unknown")]
        if role:
            parts.append(_part("role", "valueCode", role))
        if organization:
            parts.append(_part("organization", "valueString", organization))
        out.append({"name": "source", "part": [*parts, _part("count", "valueInteger", count)]})
    for uri, count in sorted(held.sources.items()):
        parts = [_part("kind", "valueCode", "system"), _part("uri", "valueUri", uri)]
        out.append({"name": "source", "part": [*parts, _part("count", "valueInteger", count)]})
    return out


def _methods(used: Trail, declared: list[str]) -> list[dict[str, Any]]:
    roles = sorted({role for _, role, _ in used.authors if role in ROLE_METHODS})
    pairs = [(ROLE_METHODS[role], "observed") for role in roles] + [(text, "declared") for text in declared]
    return [{"name": "collectionMethod",
             "part": [_part("method", "valueString", text), _part("basis", "valueCode", basis)]}
            for text, basis in pairs]


def report(patient_id: str, held: Holdings, used: Trail, stmt: dict[str, Any]) -> dict[str, Any]:
    """The AC-16 report as a ``Parameters`` resource."""
    parameters = [
        _part("patient", "valueReference", {"reference": f"Patient/{patient_id}"}),
        _part("generated", "valueInstant", now_instant()),
        _part("dataHeld", "valueBoolean", bool(held.types)),
        *_data(held),
        *_purposes(held, used, stmt["purposes"]),
        *_sources(held, used),
        *_methods(used, stmt["collectionMethods"]),
        *(_part("processingMethod", "valueString", text) for text in stmt["processingMethods"]),
        _part("processingPeriod", "valueString", stmt["processingPeriod"]),
        _part("retentionPeriod", "valueString", stmt["retentionPeriod"]),
        _part("auditEventsExamined", "valueInteger", used.examined),
        _part("auditTrailComplete", "valueBoolean", used.complete),
    ]
    return {"resourceType": "Parameters", "parameter": parameters}


@operation("data-report", levels=("instance",), types=("Patient",))
async def data_report_operation(call: OperationCall) -> FhirResponse:
    reject_unknown(call, frozenset())
    # Admins run it to answer an AC-15/AC-16 information request (policy operation "data-report").
    gate = await open_patient_operation(call, require_patient=True)
    held = await holdings(call.access, call.start, gate.patient_id)
    used = await trail(call.access.records, gate.patient_id, AUDIT_LIMIT)
    await gate.done()
    body = report(gate.patient_id, held, used, statement())
    return FhirResponse(200, dumps(body, pretty=call.pretty))
