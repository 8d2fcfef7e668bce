"""``POST Patient/[id]/$block`` and ``POST Patient/[id]/$unblock``: blocking of records (AC-26).

An administrator blocks records of a patient (``resource``, each in the patient's compartment) for a
stated ``reason``, optionally on a data-subject request (``request``, a Task of that patient); the block is
a Flag (policy/blocking.py) written through the one write path, so it is validated, audited and notified
to the patient (AC-18) like any other write. From its commit on, the engine hides the blocked records from
everyone but the patient on every path. ``$unblock`` (``block`` = the Flag, ``reason``) makes the Flag
inactive and ends its period: the records are visible again under the usual rules, and the history of the
Flag keeps when and why it was set and lifted.

Administrators pass the gate by the operations' names (``PolicySettings.admin_operations``); anyone else
is refused with an audited 403 before anything is read.
"""

from __future__ import annotations

from typing import Any

from fhir_server.errors import FhirError
from fhir_server.interactions.base import FhirResponse, Prefer, representation
from fhir_server.interactions.executor import execute
from fhir_server.interactions.plan import create_op, update_op
from fhir_server.jsonio import reload
from fhir_server.operations.patient_ops import now_instant, query_text, reject_unknown
from fhir_server.operations.registry import OperationCall, operation
from fhir_server.search.compartments import literal_target
from fhir_server.security.audit.balp import AuditTarget
from fhir_server.security.policy import Decision, Verdict
from fhir_server.security.policy.blocking import (
    BLOCK_BASIS_URL,
    BLOCKED_CODE,
    BLOCKED_RESOURCE_URL,
    PROCESSING_SYSTEM,
    is_block,
)
from fhir_server.storage.protocols import TxView

BLOCK_INPUTS = frozenset({"resource", "reason", "request"})
UNBLOCK_INPUTS = frozenset({"block", "reason"})
MAX_RESOURCES = 1000
#: records that cannot be blocked: the patient (their identity) and the blocks themselves
UNBLOCKABLE = frozenset({"Patient", "Flag"})


def _post(call: OperationCall) -> None:
    if call.method != "POST":
        raise FhirError("method_not_allowed", f"${call.name} changes data: use POST with a Parameters body")


def _refs(call: OperationCall, name: str) -> list[str]:
    out = []
    for value in call.params().get(name, []):
        ref = value.get("reference") if isinstance(value, dict) else value
        target = literal_target(ref) if isinstance(ref, str) else None
        if target is None:
            raise FhirError("invalid", f"parameter {name!r} must be a literal reference Type/id", code="value",
                            expression=name)
        out.append(f"{target[0]}/{target[1]}")
    return list(dict.fromkeys(out))


def _reason(call: OperationCall) -> str:
    reason = call.one("reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 2000:
        raise FhirError("invalid", "state the decision's reason: 'reason', a string of at most 2000 characters",
                        code="required", expression="reason")
    return reason.strip()


async def _admin_only(call: OperationCall, patient_id: str) -> None:
    target = AuditTarget("operation", "Patient", patient_id, query=query_text(call), patient_id=patient_id)
    if call.access.enabled and call.start.decision is Decision.PROCEED:
        await call.access.deny(target, Verdict.reject(f"${call.name} is for administrators (AC-26)"), [patient_id])


@operation("block", levels=("instance",), types=("Patient",))
async def block(call: OperationCall) -> FhirResponse:
    _post(call)
    reject_unknown(call, BLOCK_INPUTS)
    assert call.resource_id is not None
    patient_id = call.resource_id
    await _admin_only(call, patient_id)
    resources = _refs(call, "resource")
    if not resources or len(resources) > MAX_RESOURCES:
        raise FhirError("invalid", f"name 1 to {MAX_RESOURCES} records to block", code="required",
                        expression="resource")
    if any(r.split("/", 1)[0] in UNBLOCKABLE for r in resources):
        raise FhirError("invalid", "the Patient resource and block Flags cannot be blocked", code="value",
                        expression="resource")
    reason = _reason(call)
    requests = _refs(call, "request")
    if len(requests) > 1 or any(not r.startswith("Task/") for r in requests):
        raise FhirError("invalid", "'request' is one Reference(Task)", code="value", expression="request")
    for request in requests:  # a request of this very patient (the admin may read the request queue)
        task: dict[str, Any] = reload((await call.access.read("Task", request[5:], interaction="operation",
                                                              record=False)).data or b"{}")
        if (task.get("for") or {}).get("reference") != f"Patient/{patient_id}":
            raise FhirError("unprocessable", f"{request} is not a request of Patient/{patient_id}",
                            code="business-rule", expression="request")

    def members(view: TxView) -> str | None:
        # existence and compartment only, never content: administrators do not read clinical data
        for ref in resources:
            rtype, rid = ref.split("/", 1)
            current = view.current(rtype, rid)
            if current is None or current.deleted or patient_id not in (current.patients or "").split():
                return ref
        return None

    outside = await call.access.transaction(members)
    if outside is not None:
        raise FhirError("unprocessable", f"{outside} is not a record in the compartment of Patient/{patient_id}",
                        code="business-rule", expression="resource")
    flag: dict[str, Any] = {
        "resourceType": "Flag",
        "extension": [{"url": BLOCKED_RESOURCE_URL, "valueReference": {"reference": r}} for r in resources]
        + [{"url": BLOCK_BASIS_URL, "valueReference": {"reference": r}} for r in requests],
        "status": "active",
        "code": {"coding": [{"system": PROCESSING_SYSTEM, "code": BLOCKED_CODE,
                             "display": "Blocked from processing (AC-26)"}], "text": reason},
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {"start": now_instant()},
    }
    if call.ctx.fhir_user and call.ctx.fhir_user.startswith(("Practitioner/", "Organization/", "Device/")):
        flag["author"] = {"reference": call.ctx.fhir_user}
    op = await create_op(call.req, "Flag", flag)
    await execute(call.req, [op], transaction=False)
    assert op.stored is not None
    return representation(op.stored, Prefer(), 201, call.base_url, location=True)


@operation("unblock", levels=("instance",), types=("Patient",))
async def unblock(call: OperationCall) -> FhirResponse:
    _post(call)
    reject_unknown(call, UNBLOCK_INPUTS)
    assert call.resource_id is not None
    patient_id = call.resource_id
    await _admin_only(call, patient_id)
    blocks = _refs(call, "block")
    if len(blocks) != 1 or not blocks[0].startswith("Flag/"):
        raise FhirError("invalid", "name the block: one 'block' Reference(Flag)", code="required", expression="block")
    reason = _reason(call)
    stored = await call.access.read("Flag", blocks[0][5:], interaction="operation", record=False)
    flag: dict[str, Any] = reload(stored.data or b"{}")
    if not is_block(flag) or (flag.get("subject") or {}).get("reference") != f"Patient/{patient_id}":
        raise FhirError("unprocessable", f"{blocks[0]} is not a block of Patient/{patient_id}",
                        code="business-rule", expression="block")
    if flag.get("status") != "active":
        raise FhirError("conflict", f"{blocks[0]} is already lifted", code="business-rule", expression="block")
    flag["status"] = "inactive"
    flag["period"] = {**(flag.get("period") or {}), "end": now_instant()}
    flag["code"] = {**flag["code"], "text": f"{flag['code'].get('text', '')} — lifted: {reason}"[:4000]}
    # the same write path as a PUT with If-Match: a block changed meanwhile is refused (412), not overwritten
    op = await update_op(call.req, "Flag", stored.id, flag, if_match=f'W/"{stored.version}"')
    await execute(call.req, [op], transaction=False)
    assert op.stored is not None
    return representation(op.stored, Prefer(), 200, call.base_url, location=False)
