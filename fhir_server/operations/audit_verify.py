"""``GET|POST [base]/AuditEvent/$audit-verify``: verify the tamper-evident audit trail (AC-14, TM-13) over the
API, for administrators and auditors. At the AuditEvent type, like ``$access-flags``: it is about AuditEvents,
and an auditor's scopes reach that type only (``user/AuditEvent.rs``).

It runs the store's own verification (the audit seam, ``AuditLog.verify``: SQLite's is the
``verify_connection`` that ``kzfhir audit verify`` runs on a database file, PostgreSQL's the same rules over
its snapshot), so the chain's rules live in one place (``security/audit/chain.py``). Reads the compiled read
path journaled are chained first. ``anchor`` (``SEQ:HASH``, repeatable) checks the chain against heads
recorded elsewhere earlier, which is what catches a rewritten tail.

The answer is a ``Parameters``: ``verified`` (boolean), ``eventsChecked`` (rows of the chain checked),
``headSeq`` and ``headHash`` (the last good row), ``firstBrokenSeq`` and ``problem`` when the chain is broken,
``archived`` when older rows were archived, and ``ranAt`` (when the check ran). A broken chain is a successful
answer (200) saying so: the operation worked, the trail did not. Each run's answer is kept (a job row, kind
``audit-verify``) with who ran it (``ranBy``); ``last=true`` answers the last one kept without verifying again
(an empty ``Parameters`` before the first), which is what the staff console shows when it opens. That record
is in the database like the chain, so it is no anchor: keep heads elsewhere. Admins and auditors pass the gate by the
operation's name (``PolicySettings.admin_operations`` / ``oversight_operations``); anyone else gets an
audited 403. Every run is audited, naming no patient.
"""

from __future__ import annotations

from typing import Any

import orjson

from fhir_server.errors import FhirError
from fhir_server.interactions.base import FhirResponse
from fhir_server.jsonio import dumps
from fhir_server.operations.patient_ops import now_instant, query_text, reject_unknown
from fhir_server.operations.registry import OperationCall, operation
from fhir_server.security.audit.balp import AuditTarget
from fhir_server.security.audit.chain import parse_anchor
from fhir_server.security.policy import Decision, Verdict
from fhir_server.storage.audit import ChainReport

KNOWN = frozenset({"anchor", "last"})
LAST_JOB = "audit-verify-last"
MAX_ANCHORS = 100


def anchors_of(call: OperationCall) -> dict[int, str]:
    values = call.params().get("anchor") or []
    if len(values) > MAX_ANCHORS:
        raise FhirError("invalid", f"at most {MAX_ANCHORS} anchors", code="too-costly", expression="anchor")
    anchors: dict[int, str] = {}
    for value in values:
        if not isinstance(value, str):
            raise FhirError("invalid", "anchor must be a string SEQ:HASH", code="value", expression="anchor")
        try:
            seq, digest = parse_anchor(value)
        except ValueError as error:
            raise FhirError("invalid", str(error), code="value", expression="anchor") from None
        if anchors.get(seq, digest) != digest:
            raise FhirError("invalid", f"two different anchors for seq {seq}", code="value", expression="anchor")
        anchors[seq] = digest
    return anchors


def report_parameters(report: ChainReport, ran_at: str) -> dict[str, Any]:
    """The ``Parameters`` answer of one verification."""
    params: list[dict[str, Any]] = [
        {"name": "verified", "valueBoolean": report.ok},
        {"name": "eventsChecked", "valueInteger": report.rows_checked},
        {"name": "headSeq", "valueInteger": report.head_seq},
        {"name": "headHash", "valueString": report.head_hash}]
    if report.first_broken_seq is not None:
        params.append({"name": "firstBrokenSeq", "valueInteger": report.first_broken_seq})
    if report.problem:
        params.append({"name": "problem", "valueString": report.problem})
    if report.archived:
        params.append({"name": "archived", "valueString": report.archived})
    params.append({"name": "ranAt", "valueInstant": ran_at})
    return {"resourceType": "Parameters", "parameter": params}


@operation("audit-verify", levels=("type",), types=("AuditEvent",))
async def audit_verify(call: OperationCall) -> FhirResponse:
    reject_unknown(call, KNOWN)
    access = call.access
    target = AuditTarget("operation", "AuditEvent", query=query_text(call))
    if access.enabled and call.start.decision is not Decision.AUTHORIZED:
        await access.deny(target, Verdict.reject("$audit-verify is for administrators and auditors (AC-14)"))
    last = call.one("last")
    if last not in (None, True, False, "true", "false"):
        raise FhirError("invalid", "last must be true or false", code="value", expression="last")
    if last in (True, "true"):
        if call.params().get("anchor"):
            raise FhirError("invalid", "last=true reads the last run kept: it takes no anchor", code="value",
                            expression="anchor")
        stored = await access.records.get_job(LAST_JOB)
        access.record(target, call.start, ())
        await access.flush()
        body = bytes(stored[3]) if stored is not None else b'{"resourceType":"Parameters"}'
        return FhirResponse(200, dumps(orjson.loads(body), pretty=call.pretty))
    anchors = anchors_of(call)
    ran_at = now_instant()
    report = await access.records.audit.verify(anchors or None)
    answer = report_parameters(report, ran_at)
    kept = {**answer, "parameter": [*answer["parameter"], {"name": "ranBy", "valueString": call.ctx.fhir_user
                                                           or call.ctx.subject or ""}]}
    await access.records.transaction(lambda view: view.put_job(LAST_JOB, "audit-verify", "done", orjson.dumps(kept)))
    # the run names no patient: one record under the caller; it is chained after the rows it checked
    access.record(target, call.start, ())
    await access.flush()
    return FhirResponse(200, dumps(answer, pretty=call.pretty))
