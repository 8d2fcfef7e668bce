"""``GET AuditEvent/$access-flags``: the accesses flagged as beyond the caller's duties, for the auditor (AC-20).

The policy flags a practitioner's consented access that nothing in the patient's care explains, a purpose
of use that is not care, and break-glass (policy/duties.py); the flag is a ``detail`` of type
``access-flag`` on the AuditEvent's request entity. This operation walks the audit trail newest first
(optionally one ``patient``, optionally one ``flag`` code) and returns the flagged AuditEvents as a
``searchset`` Bundle, ``_count`` at a time, scanning at most ``SCAN_BUDGET`` events per page (a ``next``
link continues below the last one scanned).

For oversight roles only: the policy's gate lets auditors and admins read AuditEvents and refuses everyone
else with an audited 403. The listing itself is audited.
"""

from __future__ import annotations

from typing import Any

from fhir_server.errors import FhirError
from fhir_server.interactions.base import FhirResponse
from fhir_server.jsonio import dumps
from fhir_server.operations.patient_ops import int_param, page_bundle, query_text, reject_unknown
from fhir_server.operations.registry import OperationCall, operation
from fhir_server.security.audit.balp import AuditTarget
from fhir_server.security.policy import Decision, Verdict
from fhir_server.security.policy.duties import BREAK_GLASS, FLAG_DETAIL, NO_CARE_RELATIONSHIP, PURPOSE_BEYOND_CARE

KNOWN = frozenset({"patient", "flag", "_count", "_cursor"})
FLAGS = frozenset({NO_CARE_RELATIONSHIP, PURPOSE_BEYOND_CARE, BREAK_GLASS})
BATCH = 500
SCAN_BUDGET = 20_000


def flags_of(event: dict[str, Any]) -> list[str]:
    """The access flags an AuditEvent carries (policy/duties.py)."""
    return [str(d.get("valueString")) for e in event.get("entity", []) or [] if isinstance(e, dict)
            for d in e.get("detail", []) or [] if isinstance(d, dict) and d.get("type") == FLAG_DETAIL]


@operation("access-flags", levels=("type",), types=("AuditEvent",))
async def access_flags(call: OperationCall) -> FhirResponse:
    reject_unknown(call, KNOWN)
    access = call.access
    target = AuditTarget("operation", "AuditEvent", query=query_text(call))
    if access.enabled and call.start.decision is not Decision.AUTHORIZED:
        await access.deny(target, Verdict.reject("$access-flags is for auditors and administrators (AC-20)"))
    patient = call.one("patient")
    if patient is not None:
        patient = str(patient.get("reference") if isinstance(patient, dict) else patient)
        if not patient.startswith("Patient/"):
            patient = f"Patient/{patient}"
    wanted = call.one("flag")
    if wanted is not None and wanted not in FLAGS:
        raise FhirError("invalid", f"flag must be one of {', '.join(sorted(FLAGS))}", code="value", expression="flag")
    count = int_param(call, "_count", 50) or 50
    before = int_param(call, "_cursor", None, low=1, high=2**62)
    await access.records.audit.sync()  # reads journaled by the compiled read path are chained first
    found: list[dict[str, Any]] = []
    scanned, next_cursor = 0, None
    while True:
        rows = await access.records.audit.events(patient, BATCH, before)
        for seq, event in rows:
            scanned += 1
            flags = flags_of(event)
            if flags and (wanted is None or wanted in flags):
                found.append(event)
            before = seq
            if len(found) == count or scanned >= SCAN_BUDGET:
                break
        if len(found) == count or scanned >= SCAN_BUDGET:
            next_cursor = str(before) if rows else None
            break
        if len(rows) < BATCH:
            break
    access.record(target, call.start, [patient[len("Patient/"):]] if patient else [])
    await access.flush()
    entries = [{"fullUrl": f"urn:uuid:{e.get('id')}", "resource": e, "search": {"mode": "match"}} for e in found]
    return FhirResponse(200, dumps(page_bundle(call, entries, next_cursor), pretty=call.pretty))
