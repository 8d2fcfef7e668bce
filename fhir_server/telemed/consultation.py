"""The telecom session of a remote consultation (TM-02, TM-20, TM-21; docs/consultation.md).

* ``POST Encounter/[id]/$consultation-start`` — a practitioner taking part starts the session at the
  telecom service; the Encounter (class VR) records service, session id and start (``kz-telecom-session``)
  and becomes ``in-progress``.
* ``POST Encounter/[id]/$consultation-join`` — a participant gets *their own* join link from the service.
  The link is answered once, with ``Cache-Control: no-store``, and stored nowhere.
* ``POST Encounter/[id]/$consultation-end`` — a practitioner taking part ends it; what the service reports
  (start, end, who joined) is recorded on the Encounter.

Participants are the Appointment's (not declined), the Encounter's subject and its participants. The
Encounter is read through the caller's access session (hidden means absent: 404); a caller who may see the
Encounter but takes no part in it gets an audited 403. Every write goes through the ordinary write path
(validation, the policy on both versions, audit, notifications), with If-Match on the version read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fhir_server.errors import FhirError
from fhir_server.interactions.base import FhirResponse, Prefer, representation
from fhir_server.interactions.executor import execute
from fhir_server.interactions.plan import update_op
from fhir_server.jsonio import dumps, reload
from fhir_server.operations.patient_ops import query_text, reject_unknown
from fhir_server.operations.registry import OperationCall, operation
from fhir_server.security.audit.balp import AuditTarget
from fhir_server.security.policy import Action, Verdict
from fhir_server.security.roles import PRACTITIONER
from fhir_server.security.session import Judged
from fhir_server.storage.protocols import StoredResource
from fhir_server.telemed import session_extension as ext
from fhir_server.telemed.video import VideoService, video_service_for

_PEOPLE = ("Patient/", "Practitioner/", "PractitionerRole/", "RelatedPerson/")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ref(node: Any) -> str | None:
    ref = node.get("reference") if isinstance(node, dict) else None
    return ref if isinstance(ref, str) and ref.startswith(_PEOPLE) and ref.count("/") == 1 else None


def participants(encounter: dict[str, Any], appointment: dict[str, Any] | None) -> list[str]:
    """Who takes part: the Appointment's participants who did not decline, the Encounter's subject and
    participants (people only: the telecom service never hears of locations or devices)."""
    found = {_ref(encounter.get("subject"))}
    found |= {_ref(p.get("individual")) for p in encounter.get("participant", []) or [] if isinstance(p, dict)}
    if appointment is not None:
        found |= {_ref(p.get("actor")) for p in appointment.get("participant", []) or []
                  if isinstance(p, dict) and p.get("status") != "declined"}
    return sorted(r for r in found if r is not None)


@dataclass(frozen=True, slots=True)
class Consultation:
    stored: StoredResource
    encounter: dict[str, Any]
    people: list[str]
    target: AuditTarget
    judged: Judged


async def _consultation(call: OperationCall) -> Consultation:
    """The Encounter as the caller may see it, its participants; the caller must be one of them."""
    if call.method != "POST":
        raise FhirError("method_not_allowed", f"${call.name} changes the consultation: use POST")
    reject_unknown(call, frozenset())
    assert call.resource_id is not None
    access = call.access
    stored = await access.read("Encounter", call.resource_id, action=Action.OPERATION, interaction="operation",
                               record=False)
    encounter: dict[str, Any] = reload(stored.data or b"{}")
    appointment = None
    for ref in encounter.get("appointment", []) or []:
        target = ref.get("reference") if isinstance(ref, dict) else None
        if isinstance(target, str) and target.startswith("Appointment/"):
            try:
                found = await access.read("Appointment", target.split("/", 1)[1], action=Action.OPERATION,
                                          interaction="operation")
            except FhirError:
                continue  # an appointment the caller may not see names nobody for them
            appointment = reload(found.data or b"{}")
            break
    people = participants(encounter, appointment)
    target = AuditTarget("operation", "Encounter", call.resource_id, str(stored.version), query=query_text(call))
    judged = await access.decide_stored(Action.OPERATION, stored)
    if access.enabled and call.ctx.fhir_user not in people:
        await access.deny(target, Verdict.reject("only the participants of the consultation's appointment "
                                                 "take part in its telecom session (TM-21)"), judged.patients)
    if not ext.is_virtual(encounter):
        raise FhirError("unprocessable", "a telecom session belongs to a remote consultation: Encounter.class "
                        "must be v3-ActCode#VR (virtual)", code="business-rule", expression="Encounter.class")
    return Consultation(stored, encounter, people, target, judged)


def _service(call: OperationCall) -> VideoService:
    service = video_service_for(call.services.settings)
    if service is None:
        raise FhirError("not_implemented", "no telecom service is configured (KZFHIR_VIDEO_SERVICE_URL)",
                        code="not-supported")
    return service


async def _practitioner(call: OperationCall, found: Consultation) -> None:
    if call.access.enabled and call.ctx.role != PRACTITIONER:
        await call.access.deny(found.target, Verdict.reject("a medical worker taking part starts and ends the "
                                                            "telecom session"), found.judged.patients)


async def _write(call: OperationCall, found: Consultation, encounter: dict[str, Any]) -> FhirResponse:
    """The new version through the ordinary write path (audited as an update), and the operation itself in the
    patient's log: who started or ended the session, and when."""
    stored = found.stored
    op = await update_op(call.req, "Encounter", stored.id, encounter, if_match=f'W/"{stored.version}"')
    await execute(call.req, [op], transaction=False)
    assert op.stored is not None
    call.access.record(found.target, found.judged.verdict, found.judged.patients)
    return representation(op.stored, Prefer(), 200, call.base_url, location=False)


@operation("consultation-start", levels=("instance",), types=("Encounter",))
async def consultation_start(call: OperationCall) -> FhirResponse:
    found = await _consultation(call)
    await _practitioner(call, found)
    stored, encounter = found.stored, found.encounter
    if ext.find(encounter) is not None:
        raise FhirError("conflict", "the consultation's telecom session was started already", code="conflict",
                        expression=f"Encounter.extension('{ext.URL}')")
    if encounter.get("status") in ("finished", "cancelled", "entered-in-error"):
        raise FhirError("conflict", f"the consultation is {encounter.get('status')}", code="business-rule",
                        expression="Encounter.status")
    service = _service(call)
    appointment = next((r.get("reference") for r in encounter.get("appointment", []) or []
                        if isinstance(r, dict) and str(r.get("reference", "")).startswith("Appointment/")), None)
    session_id = await service.start(f"Encounter/{stored.id}", appointment, found.people)
    started = _now()
    period = dict(encounter.get("period") or {})
    period.setdefault("start", started)
    new = ext.with_session({**encounter, "status": "in-progress", "period": period},
                           ext.build(service.name, session_id, start=started))
    try:
        return await _write(call, found, new)
    except FhirError:
        await service.end(session_id)  # no orphan session at the service when the record is refused
        raise


@operation("consultation-join", levels=("instance",), types=("Encounter",))
async def consultation_join(call: OperationCall) -> FhirResponse:
    found = await _consultation(call)
    parts = _running(found.encounter)
    joined = await _service(call).join(str(parts["sessionId"][0]), call.ctx.fhir_user or "")
    # who was given a way in, and when (TM-21)
    call.access.record(found.target, found.judged.verdict, found.judged.patients)
    params: dict[str, Any] = {"resourceType": "Parameters", "parameter": [{"name": "link", "valueUrl": joined.link}]}
    if joined.expires:
        params["parameter"].append({"name": "expires", "valueInstant": joined.expires})
    return FhirResponse(200, dumps(params, pretty=call.pretty), {"Cache-Control": "no-store"})


@operation("consultation-end", levels=("instance",), types=("Encounter",))
async def consultation_end(call: OperationCall) -> FhirResponse:
    found = await _consultation(call)
    await _practitioner(call, found)
    parts = _running(found.encounter)
    report = await _service(call).end(str(parts["sessionId"][0]))
    start = report.start or (parts.get("start") or [None])[0]
    end = report.end or _now()
    period = {**(found.encounter.get("period") or {}), "end": end}
    new = ext.with_session({**found.encounter, "period": period},
                           ext.build(str(parts["service"][0]), str(parts["sessionId"][0]), start=start, end=end,
                                     participants=report.participants))
    return await _write(call, found, new)


def _running(encounter: dict[str, Any]) -> dict[str, list[Any]]:
    session = ext.find(encounter)
    parts = ext.parts(session) if session is not None else {}
    if session is None or parts.get("end"):
        raise FhirError("conflict", "the consultation has no running telecom session", code="business-rule")
    return parts
