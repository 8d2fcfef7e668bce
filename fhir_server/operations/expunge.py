"""``POST Patient/[id]/$expunge``: destroy data collected in breach of the rules, on the patient's demand (AC-22).

The data-subject request queue holds the decision: the patient (or representative) files a request of kind
``destruction`` naming what it concerns (``$data-subject-request``), an administrator decides it
(``$dsr-answer`` ``outcome=completed`` with the reason), and only then may an administrator destroy the
resources that request names (its ``focus``, ``input`` or ``output`` references), each in the patient's
compartment. In one write unit every listed resource loses its current row, every version and every index row
(``TxView.expunge``: on SQLite with ``secure_delete`` and a WAL checkpoint, so the bytes leave the files too),
and a tombstone AuditEvent per resource records what was destroyed (``Type/id/_history/n``), why (the request and
its reason, in the query entity) and by whom — never the content. The audit chain is only appended to, so it
stays verifiable; nothing can bring the data back. The patient is notified like of any other change (AC-18).

Administrators pass the gate by the operation's name (``PolicySettings.admin_operations``); anyone else is
refused with an audited 403 before anything is read.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fhir_server.errors import FhirError
from fhir_server.interactions.base import FhirResponse
from fhir_server.jsonio import dumps, reload
from fhir_server.operations.patient_ops import query_text, reject_unknown
from fhir_server.operations.registry import OperationCall, operation
from fhir_server.search.compartments import literal_target
from fhir_server.security.audit.balp import AuditTarget
from fhir_server.security.policy import Decision, Verdict
from fhir_server.security.policy.rules import DSR_TASK_SYSTEM
from fhir_server.storage.protocols import TxView

INPUTS = frozenset({"request", "resource"})
MAX_RESOURCES = 1000


def _references(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        target = literal_target(node.get("reference"))
        if target is not None:
            out.add(f"{target[0]}/{target[1]}")
        for value in node.values():
            _references(value, out)
    elif isinstance(node, list):
        for item in node:
            _references(item, out)


def _named(call: OperationCall, name: str) -> list[str]:
    out = []
    for value in call.params().get(name, []):
        ref = value.get("reference") if isinstance(value, dict) else value
        target = literal_target(ref)
        if target is None:
            raise FhirError("invalid", f"parameter {name!r} must be a literal reference Type/id", code="value",
                            expression=name)
        out.append(f"{target[0]}/{target[1]}")
    return out


def _decided(task: dict[str, Any], patient_id: str) -> str:
    """The decision's reason; refuses a request that is not a decided destruction request of this patient."""
    codes = {c.get("code") for c in (task.get("code") or {}).get("coding", []) or []
             if isinstance(c, dict) and c.get("system") == DSR_TASK_SYSTEM}
    if "destruction" not in codes or (task.get("for") or {}).get("reference") != f"Patient/{patient_id}":
        raise FhirError("unprocessable", f"the request is not a destruction request of Patient/{patient_id}",
                        code="business-rule", expression="request")
    if task.get("status") != "completed":
        raise FhirError("unprocessable", "the destruction request is not decided: answer it first "
                        "($dsr-answer outcome=completed with the reason)", code="business-rule", expression="request")
    reason = (task.get("statusReason") or {}).get("text") or next(
        (o.get("valueString") for o in task.get("output", []) or [] if isinstance(o, dict) and o.get("valueString")),
        None)
    return str(reason or "decided")


@operation("expunge", levels=("instance",), types=("Patient",))
async def expunge(call: OperationCall) -> FhirResponse:
    if call.method != "POST":
        raise FhirError("method_not_allowed", "$expunge destroys data: use POST with a Parameters body")
    reject_unknown(call, INPUTS)
    assert call.resource_id is not None
    patient_id, access = call.resource_id, call.access
    target = AuditTarget("operation", "Patient", patient_id, query=query_text(call), patient_id=patient_id)
    if access.enabled and call.start.decision is Decision.PROCEED:
        await access.deny(target, Verdict.reject("$expunge is for administrators deciding data-subject requests"),
                          [patient_id])
    requests = _named(call, "request")
    if len(requests) != 1 or not requests[0].startswith("Task/"):
        raise FhirError("invalid", "name the decided request: one 'request' Reference(Task)", code="required",
                        expression="request")
    resources = list(dict.fromkeys(_named(call, "resource")))
    if not resources or len(resources) > MAX_RESOURCES:
        raise FhirError("invalid", f"name 1 to {MAX_RESOURCES} resources to destroy", code="required",
                        expression="resource")
    stored = await access.read("Task", requests[0].split("/", 1)[1], interaction="operation")
    task: dict[str, Any] = reload(stored.data or b"{}")
    reason = _decided(task, patient_id)
    named: set[str] = set()
    _references({k: v for k, v in task.items() if k in ("focus", "input", "output")}, named)
    for item in [*(task.get("input", []) or []), *(task.get("output", []) or [])]:  # "change": "Observation/o1"
        listed = literal_target(item.get("valueString")) if isinstance(item, dict) else None
        if listed is not None:
            named.add(f"{listed[0]}/{listed[1]}")
    outside = [r for r in resources if r not in named]
    if outside:
        raise FhirError("unprocessable", f"{outside[0]} is not named by the decided request {requests[0]}",
                        code="business-rule", expression="resource")
    why = f"$expunge?request={requests[0]}&reason={quote(reason[:300])}"
    verdict = Verdict(Decision.AUTHORIZED, f"destroyed on the patient's request {requests[0]} (AC-22)",
                      ("data-subject-request",))
    services = call.services

    def unit(view: TxView) -> list[tuple[str, int]]:
        done = []
        for ref in resources:
            rtype, rid = ref.split("/", 1)
            current = view.current(rtype, rid)
            if current is None:
                raise FhirError("not_found", f"{ref} is not known", expression="resource")
            last = current if not current.deleted else view.version(rtype, rid, current.version - 1)
            if last is None or patient_id not in (last.patients or "").split():
                raise FhirError("unprocessable", f"{ref} is not in the compartment of Patient/{patient_id}",
                                code="business-rule", expression="resource")
            removed = view.expunge(rtype, rid)
            if services.enforcer is not None:
                services.enforcer.facts_changed(rtype, view)
            access.record(AuditTarget("delete", rtype, rid, str(current.version), query=why, patient_id=patient_id),
                          verdict, [patient_id])
            done.append((ref, removed))
        return done

    destroyed = await access.transaction(unit)
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "destroyed", "part": [{"name": "resource", "valueString": ref},
                                       {"name": "versions", "valueInteger": n}]} for ref, n in destroyed]}
    return FhirResponse(200, dumps(params, pretty=call.pretty))
