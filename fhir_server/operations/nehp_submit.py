"""``Encounter/[id]/$nehp-submit``: queue a remote service's record for the National Electronic Health
Passport (TM-11) and its claim line for the payment system (TM-19).

The Encounter and what belongs to it (what it references, what references it, the patient's
Coverage) are gathered from the store, mapped by ``mappings`` (the MD-D record, docs/mappings.md),
and put into the durable outbox — topics ``nehp`` and ``payment`` — in one unit with the AuditEvent
that documents the transfer (TM-13). The outbox worker delivers them with retries to
``KZFHIR_NEHP_URL`` / ``KZFHIR_PAYMENT_URL`` and audits each delivery. Keys derive from the Encounter
version, so submitting the same version twice queues nothing new. A record missing MD-D items is
refused with 422 naming each item.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from fhir_server.errors import FhirError, operation_outcome
from fhir_server.interactions.base import FhirResponse
from fhir_server.jobs.runtime import NEHP_TOPIC, PAYMENT_TOPIC
from fhir_server.jsonio import dumps, reload
from fhir_server.operations.registry import OperationCall, operation
from fhir_server.security.audit.balp import AuditTarget
from fhir_server.security.policy import Action, Verdict
from fhir_server.security.session import AccessSession
from fhir_server.storage.protocols import TxView
from fhir_server.subscriptions.events import emit
from fhir_server.subscriptions.topics import NEHP_SUBMISSION, Event
from mappings import build_record
from mappings.nehp import get_adapter
from mappings.payment import claim_line_from_record
from mappings.payment.claim_line import to_json as line_json

# resources that point at the service (encounter search parameter), read with it
_LINKED = (("Condition", "encounter"), ("Observation", "encounter"), ("ServiceRequest", "encounter"),
           ("MedicationRequest", "encounter"), ("Composition", "encounter"), ("DocumentReference", "encounter"),
           ("CarePlan", "encounter"), ("ClinicalImpression", "encounter"), ("ChargeItem", "context"),
           ("Procedure", "encounter"))


def _references(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and ref.count("/") == 1 and not ref.startswith(("#", "urn:")):
            out.add(ref)
        for value in node.values():
            _references(value, out)
    elif isinstance(node, list):
        for item in node:
            _references(item, out)


async def _read(access: AccessSession, ref: str) -> dict[str, Any] | None:
    """A referenced resource the caller may see (the record is built from nothing else)."""
    rtype, _, rid = ref.partition("/")
    try:
        stored = await access.read(rtype, rid, action=Action.OPERATION, interaction="operation")
    except FhirError:
        return None
    resource: dict[str, Any] = reload(stored.data or b"{}")
    return resource


async def _search(access: AccessSession, start: Verdict, rtype: str, params: list[tuple[str, str]]
                  ) -> list[dict[str, Any]]:
    from fhir_server.search import parse_search

    query = parse_search(rtype, [*params, ("_count", "200")], strict=True)
    result = await access.search(query, AuditTarget("operation", rtype, query="$nehp-submit"), start)
    return [reload(m.data) for m in result.matches if m.mode == "match"]


#: finds the resources of a type matching search params; reads one resource by ``Type/id`` (or None)
Finder = Callable[[str, list[tuple[str, str]]], Awaitable[list[dict[str, Any]]]]
Reader = Callable[[str], Awaitable[dict[str, Any] | None]]


async def collect(encounter: dict[str, Any], find: Finder, read: Reader) -> dict[str, dict[str, Any]]:
    """The Encounter, what references it, what they reference (two levels), and the patient's Coverage: the
    input of the MD-D record, the same for ``$nehp-submit`` and the automatic delivery (jobs/nehp_delivery.py)."""
    found: dict[str, dict[str, Any]] = {f"Encounter/{encounter['id']}": encounter}
    for rtype, param in _LINKED:
        for res in await find(rtype, [(param, f"Encounter/{encounter['id']}")]):
            found[f"{rtype}/{res['id']}"] = res
    patient = (encounter.get("subject") or {}).get("reference")
    if isinstance(patient, str) and patient.startswith("Patient/"):
        for res in await find("Coverage", [("beneficiary", patient)]):
            found[f"Coverage/{res['id']}"] = res
    for _ in range(2):
        wanted: set[str] = set()
        for res in list(found.values()):
            _references(res, wanted)
        for ref in sorted(wanted - set(found)):
            referenced = await read(ref)
            if referenced is not None:
                found[ref] = referenced
    return found


async def gather(access: AccessSession, start: Verdict, encounter: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """:func:`collect` as far as the caller may see (the record is built from nothing else)."""

    async def find(rtype: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
        return await _search(access, start, rtype, params)

    return await collect(encounter, find, lambda ref: _read(access, ref))


@operation("nehp-submit", levels=("instance",), types=("Encounter",))
async def nehp_submit(call: OperationCall) -> FhirResponse:
    assert call.resource_id is not None
    services = call.services
    access = call.access
    stored = await access.read("Encounter", call.resource_id, action=Action.OPERATION, interaction="operation",
                               record=False)
    judged = await access.decide_stored(Action.OPERATION, stored)
    verdict, patients = judged.verdict, judged.patients
    record = build_record(await gather(access, call.start, reload(stored.data or b"{}")),
                          f"Encounter/{call.resource_id}", relaxed_iin=services.settings.relaxed_iin)
    if not record.ok:
        raise FhirError("unprocessable", "the remote-service record misses MD-D items "
                        f"{', '.join(map(str, record.missing_items)) or '(see issues)'}", issues=record.issues)
    message = get_adapter(services.settings.nehp_format).to_message(record)
    claim = claim_line_from_record(record)
    partition = record.patient.reference if record.patient is not None else None
    target = AuditTarget("operation", "Encounter", call.resource_id, str(stored.version))
    # the topic event of the submission (TM-11, subscriptions/events.py) is raised once per record
    queued_before = partition is not None and any(
        item.key == record.record_id for item in await access.records.outbox_partition(NEHP_TOPIC, partition, 1000))
    encounter = reload(stored.data or b"{}")

    def unit(view: TxView) -> None:
        view.enqueue(NEHP_TOPIC, partition, record.record_id, message)
        if claim.line is not None:
            view.enqueue(PAYMENT_TOPIC, partition, claim.line.line_id, orjson.dumps(line_json(claim.line)))
        access.record(target, verdict, patients)  # the transfer, documented (TM-13)
        if not queued_before:
            emit(view, services, Event(NEHP_SUBMISSION, encounter, code="submitted"), stored, in_write_unit=False)

    await access.transaction(unit)
    queued = [{"name": "nehp", "valueString": record.record_id}]
    if claim.line is not None:
        queued.append({"name": "payment", "valueString": claim.line.line_id})
    issues = [*record.issues, *claim.issues]
    params = {"resourceType": "Parameters", "parameter": [
        *queued, {"name": "outcome", "resource": operation_outcome(issues)}]}
    return FhirResponse(200, dumps(params, pretty=call.pretty))
