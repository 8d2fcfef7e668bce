"""Data-subject request operations (AC-15, AC-16, AC-17, AC-27; docs/data-subject-requests.md).

* ``POST Patient/{id}/$data-subject-request`` — the patient, their verified representative, or an
  admin registering a paper request files a request: a Task due in 3 working days (dsr_tasks.py).
* ``POST Task/{id}/$dsr-answer`` — an admin answers: ``completed``, or ``rejected`` with a reason.
* ``GET $dsr-overdue`` — admins list the open requests past their due date, most overdue first.

Admins pass the policy's type-level gate by the operation names (``PolicySettings.admin_operations``);
every call is audited, and the patient is notified of requests filed or answered by someone else (AC-18).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir_server.errors import FhirError
from fhir_server.interactions.base import FhirResponse, Prefer, representation
from fhir_server.interactions.executor import execute
from fhir_server.interactions.plan import create_op, update_op
from fhir_server.jsonio import dumps, reload
from fhir_server.operations import dsr_tasks as dsr
from fhir_server.operations.patient_ops import open_patient_operation, page_bundle, query_text, reject_unknown
from fhir_server.operations.registry import OperationCall, operation
from fhir_server.search import parse_search
from fhir_server.search.parse_values import parse_date
from fhir_server.security.audit.balp import AuditTarget
from fhir_server.security.policy import Decision, Verdict
from fhir_server.security.policy.rules import DSR_TASK_SYSTEM
from fhir_server.security.roles import ADMIN
from fhir_server.security.session import AccessSession

REQUEST_INPUTS = frozenset({"kind", "description", "change", "focus", "received", "requester"})
ANSWER_INPUTS = frozenset({"outcome", "reason", "note", "output"})


def _post_only(call: OperationCall) -> None:
    if call.method != "POST":
        raise FhirError("method_not_allowed", f"${call.name} changes data: use POST with a Parameters body")


def _text(call: OperationCall, name: str, *, required: bool = False) -> str | None:
    value = call.one(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise FhirError("invalid", f"parameter {name!r} is required", code="required", expression=name)
        return None
    if not isinstance(value, str) or len(value) > 4000:
        raise FhirError("invalid", f"parameter {name!r} must be a string of at most 4000 characters",
                        code="value", expression=name)
    return value.strip()


def _reference(call: OperationCall, name: str) -> dict[str, Any] | None:
    value = call.one(name)
    if value is None:
        return None
    if isinstance(value, str):
        value = {"reference": value}
    if not isinstance(value, dict) or not isinstance(value.get("reference"), str):
        raise FhirError("invalid", f"parameter {name!r} must be a Reference", code="value", expression=name)
    return {"reference": value["reference"]}


def _received(call: OperationCall, access: AccessSession, now: datetime) -> datetime:
    """When the request arrived: now, or (admins only, AC-15 paper requests) the ``received`` date."""
    raw = _text(call, "received")
    if raw is None:
        return now
    if access.enabled and call.ctx.role != ADMIN:
        raise FhirError("invalid", "only administrators record when a paper request was received",
                        code="business-rule", expression="received")
    received = datetime.fromtimestamp(parse_date("received", raw).low / 1_000_000, tz=dsr.KZ_TZ)
    if received > now:
        raise FhirError("invalid", "received lies in the future", code="value", expression="received")
    return received


def _requester(call: OperationCall, patient_id: str) -> str:
    """Who asked: the caller (patient, representative); for an admin's entry the ``requester`` given
    (the patient or a RelatedPerson), else the patient."""
    if call.ctx.role != ADMIN and call.ctx.fhir_user:
        return call.ctx.fhir_user
    given = (_reference(call, "requester") or {}).get("reference") or f"Patient/{patient_id}"
    if given != f"Patient/{patient_id}" and not given.startswith("RelatedPerson/"):
        raise FhirError("invalid", "requester must be the patient or a RelatedPerson", code="value",
                        expression="requester")
    return given


def _new_request(call: OperationCall, access: AccessSession, patient_id: str) -> dict[str, Any]:
    kind = _text(call, "kind", required=True)
    if kind not in dsr.KINDS:
        raise FhirError("invalid", "kind must be information, correction or destruction", code="value",
                        expression="kind")
    changes = [str(v) for v in call.params().get("change", []) if isinstance(v, str) and v.strip()]
    description = _text(call, "description")
    if kind in ("correction", "destruction") and not (description or changes):
        raise FhirError("invalid", f"a {kind} request says what it concerns (description or change)",
                        code="required", expression="change")
    requester = _requester(call, patient_id)
    calendar = dsr.calendar_for(call.services.settings.calendar_override)
    received = _received(call, access, dsr.CLOCK.now())
    return dsr.request_task(kind, patient_id, received, calendar, requester=requester,
                            description=description, changes=changes, focus=_reference(call, "focus"))


@operation("data-subject-request", levels=("instance",), types=("Patient",))
async def data_subject_request(call: OperationCall) -> FhirResponse:
    _post_only(call)
    reject_unknown(call, REQUEST_INPUTS)
    gate = await open_patient_operation(call, require_patient=True)
    task = _new_request(call, gate.access, gate.patient_id)
    op = await create_op(call.req, "Task", task)
    await execute(call.req, [op], transaction=False)
    assert op.stored is not None
    return representation(op.stored, Prefer(), 201, call.base_url, location=True)


def _answer_inputs(call: OperationCall) -> tuple[str, str | None, str | None, dict[str, Any] | None]:
    outcome = _text(call, "outcome", required=True)
    if outcome not in ("completed", "rejected"):
        raise FhirError("invalid", "outcome must be completed or rejected", code="value",
                        expression="outcome")
    reason = _text(call, "reason")
    if outcome == "rejected" and reason is None:
        # AC-17: a refusal is a reasoned answer (no identity document, third parties' rights ...).
        raise FhirError("unprocessable", "a refusal must give its reason (AC-17)", code="required",
                        expression="reason")
    return outcome, reason, _text(call, "note"), _reference(call, "output")


async def _open_queue(call: OperationCall, target: AuditTarget) -> tuple[AccessSession, Verdict]:
    """Admins only (the request queue): the gate authorises them by operation name; anyone else gets an
    audited 403 (a rule about the caller, not about data)."""
    if call.start.decision is Decision.PROCEED:
        await call.access.deny(target, Verdict.reject(f"${call.name} is for administrators of the request queue"))
    return call.access, call.start


@operation("dsr-answer", levels=("instance",), types=("Task",))
async def dsr_answer(call: OperationCall) -> FhirResponse:
    _post_only(call)
    reject_unknown(call, ANSWER_INPUTS)
    assert call.resource_id is not None
    access, _ = await _open_queue(call, AuditTarget("operation", "Task", call.resource_id, query=query_text(call)))
    outcome, reason, note, output = _answer_inputs(call)
    stored = await access.read("Task", call.resource_id, interaction="operation", record=False)
    task: dict[str, Any] = reload(stored.data or b"{}")
    if not dsr.is_dsr(task):
        raise FhirError("invalid", f"Task/{call.resource_id} is not a data-subject request "
                                   f"({DSR_TASK_SYSTEM})", code="business-rule")
    if task.get("status") in dsr.FINAL_STATUSES:
        raise FhirError("conflict", f"the request is already {task.get('status')}", code="business-rule")
    new = dsr.answered(task, outcome, dsr.CLOCK.now(), reason=reason, note=note, answerer=call.ctx.fhir_user,
                       output=output)
    # the same write path as a PUT with If-Match: a request changed meanwhile is refused (412), not overwritten
    op = await update_op(call.req, "Task", stored.id, new, if_match=f'W/"{stored.version}"')
    await execute(call.req, [op], transaction=False)
    assert op.stored is not None
    return representation(op.stored, Prefer(), 200, call.base_url, location=False)


async def open_requests(access: AccessSession, start: Verdict) -> list[dict[str, Any]]:
    """Every data-subject request that is not answered yet, through the session (paged)."""
    params = [("code", f"{DSR_TASK_SYSTEM}|"), ("status", ",".join(dsr.OPEN_STATUSES)), ("_count", "500")]
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    target = AuditTarget("operation", "Task", query="$dsr-overdue")
    while True:
        query = parse_search("Task", params + ([("_cursor", cursor)] if cursor else []), strict=True)
        result = await access.search(query, target, start)
        found += [reload(m.data) for m in result.matches if m.mode == "match"]
        cursor = result.next_cursor
        if not cursor:
            return found


@operation("dsr-overdue", levels=("system",))
async def dsr_overdue(call: OperationCall) -> FhirResponse:
    reject_unknown(call, frozenset())
    target = AuditTarget("operation", query=query_text(call))
    access, verdict = await _open_queue(call, target)
    now = dsr.CLOCK.now()
    overdue = sorted((t for t in await open_requests(access, verdict) if dsr.is_overdue(t, now)),
                     key=lambda t: dsr.due_high(t) or 0)
    patients = {str(t["for"]["reference"]).split("/", 1)[1] for t in overdue
                if str((t.get("for") or {}).get("reference", "")).startswith("Patient/")}
    access.record(target, verdict, patients)
    base = call.base_url.rstrip("/")
    entries = [{"fullUrl": f"{base}/Task/{t['id']}", "resource": t, "search": {"mode": "match"}}
               for t in overdue]
    return FhirResponse(200, dumps(page_bundle(call, entries, None, total=len(entries)), pretty=call.pretty))
