"""``GET $deliveries``: deliveries to the national systems as the outbox holds them, for administrators (TM-11,
TM-13, TM-19, AC-06).

By default the ones given up (``status=dead``): rejected by the receiver (the NEHP's ``rejected``
acknowledgement, with its reason) or failed after the last retry. ``topic`` is ``nehp`` (default),
``payment``, ``egov-cabinet`` or ``nehp-build``; ``status`` is ``dead``, ``pending`` or ``delivered``;
``_count`` (1-500, default 50) and ``_cursor`` page newest first. ``counts=true`` adds one ``count`` per topic
and status (how many messages each holds; statuses without any are not listed), for an overview of every
delivery: the given-up, the pending and the delivered ones. The answer is a ``Parameters`` with one
``delivery`` per message — its outbox id, topic, the patient it concerns, the idempotency key, status, attempts,
the last error (the receiver's reason) and times — never the payload: administrators do not read clinical
content. The staff console shows it (portal/console.py). Admins pass the gate by the operation's name
(``PolicySettings.admin_operations``); anyone else gets an audited 403. The listing is audited.
"""

from __future__ import annotations

from typing import Any

from fhir_server.errors import FhirError
from fhir_server.interactions.base import FhirResponse
from fhir_server.jobs.nehp_delivery import BUILD_TOPIC
from fhir_server.jobs.runtime import EGOV_TOPIC, NEHP_TOPIC, PAYMENT_TOPIC
from fhir_server.jsonio import dumps
from fhir_server.operations.patient_ops import int_param, query_text, reject_unknown
from fhir_server.operations.registry import OperationCall, operation
from fhir_server.security.audit.balp import AuditTarget
from fhir_server.security.policy import Decision, Verdict
from fhir_server.storage.protocols import OutboxItem

KNOWN = frozenset({"topic", "status", "counts", "_count", "_cursor"})
TOPICS = (NEHP_TOPIC, PAYMENT_TOPIC, EGOV_TOPIC, BUILD_TOPIC)
STATUSES = ("dead", "pending", "delivered")


def delivery(item: OutboxItem) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [
        {"name": "id", "valueInteger": item.id}, {"name": "topic", "valueCode": item.topic},
        {"name": "key", "valueString": item.key}, {"name": "status", "valueCode": item.status},
        {"name": "attempts", "valueInteger": item.attempts}, {"name": "created", "valueInstant": item.created}]
    if item.partition:
        parts.append({"name": "patient", "valueReference": {"reference": item.partition}})
    if item.last_error:
        parts.append({"name": "error", "valueString": item.last_error})
    if item.delivered_at:
        parts.append({"name": "delivered", "valueInstant": item.delivered_at})
    return {"name": "delivery", "part": parts}


def _counts_wanted(call: OperationCall) -> bool:
    value = call.one("counts")
    if value in (None, False, "false"):
        return False
    if value in (True, "true"):
        return True
    raise FhirError("invalid", "counts must be true or false", code="value", expression="counts")


def _choice(call: OperationCall, name: str, allowed: tuple[str, ...]) -> str:
    value = call.one(name) or allowed[0]
    if value not in allowed:
        raise FhirError("invalid", f"{name} must be one of {', '.join(allowed)}", code="value", expression=name)
    return str(value)


@operation("deliveries", levels=("system",))
async def deliveries(call: OperationCall) -> FhirResponse:
    reject_unknown(call, KNOWN)
    access = call.access
    target = AuditTarget("operation", query=query_text(call))
    if access.enabled and call.start.decision is not Decision.AUTHORIZED:
        await access.deny(target, Verdict.reject("$deliveries is for administrators"))
    topic, status = _choice(call, "topic", TOPICS), _choice(call, "status", STATUSES)
    counts = await access.records.outbox_counts(list(TOPICS)) if _counts_wanted(call) else []
    count = int_param(call, "_count", 50) or 50
    before = int_param(call, "_cursor", None, low=1, high=2**62)
    rows = await access.records.outbox_by_status(topic, status, count + 1, before)
    more = len(rows) > count
    rows = rows[:count]
    # the listing names no health data: recorded once, not per patient (no notification to each of them)
    access.record(target, call.start, ())
    await access.flush()
    params = [delivery(item) for item in rows]
    if more and rows:
        params.append({"name": "next", "valueString": str(rows[-1].id)})
    params += [{"name": "count", "part": [{"name": "topic", "valueCode": t}, {"name": "status", "valueCode": st},
                                          {"name": "messages", "valueInteger": n}]} for t, st, n in counts]
    return FhirResponse(200, dumps({"resourceType": "Parameters", "parameter": params}, pretty=call.pretty))
