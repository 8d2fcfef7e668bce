"""``Patient/{id}/$notifications`` (AC-18): the patient's notifications with their delivery status,
newest first, paged.

Every use, change or addition of a patient's data by someone else queues a ``notification`` in the
durable outbox (the access-log line), and break-glass access an urgent notice; the outbox worker
delivers them (jobs/worker.py). This lists both topics from the outbox, each shown as an R4
``Communication``:

| outbox state | ``status`` | notes |
|---|---|---|
| pending, not tried yet | ``preparation`` | also when no channel is configured |
| pending, failed before | ``in-progress`` | ``statusReason``: retried, with the attempt count |
| delivered | ``completed`` | ``sent`` = when a channel accepted it |
| dead (gave up) | ``not-done`` | ``statusReason``: the attempt count (never the channel's error text) |

Inputs: ``_count`` (1-500, default 50) and the ``_cursor`` of a ``next`` link. Access: as
``$access-log`` (the patient, a verified representative, auditor/admin).
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from fhir_server.interactions.base import FhirResponse
from fhir_server.jobs.delivery_audit import OUTBOX_SYSTEM
from fhir_server.jobs.messages import message_text
from fhir_server.jsonio import dumps
from fhir_server.operations.patient_ops import int_param, open_patient_operation, page_bundle, reject_unknown
from fhir_server.operations.registry import OperationCall, operation
from fhir_server.security.audit.notify import CATEGORY_SYSTEM
from fhir_server.security.audit.read_notices import expand
from fhir_server.security.session import NOTIFY_TOPIC, URGENT_TOPIC
from fhir_server.storage.protocols import OutboxItem, Store

KNOWN = frozenset({"_count", "_cursor"})
TOPICS = (NOTIFY_TOPIC, URGENT_TOPIC)


async def newest(store: Store, partition: str, count: int, before: int | None
                 ) -> tuple[list[OutboxItem], int | None]:
    """One page over both topics. Outbox ids grow across topics, so one id cursor pages both."""
    await store.audit.sync()  # reads journaled a moment ago: their notices are queued as they are chained
    items: list[OutboxItem] = []
    for topic in TOPICS:
        items += await store.outbox_partition(topic, partition, count + 1, before)
    items.sort(key=lambda item: item.id, reverse=True)
    more = len(items) > count
    items = items[:count]
    return items, (items[-1].id if more else None)


def _status(item: OutboxItem) -> tuple[str, str | None]:
    if item.status == "delivered":
        return "completed", None
    if item.status == "dead":
        return "not-done", f"delivery failed after {item.attempts} attempts"
    if item.attempts:
        return "in-progress", f"delivery is being retried ({item.attempts} failed attempts so far)"
    return "preparation", None


def _about(payload: dict[str, Any]) -> list[dict[str, str]]:
    lines = payload.get("items", []) if payload.get("digest") else [payload]
    found = [w for line in lines if isinstance(line, dict) for w in line.get("what", [])]
    refs = list(dict.fromkeys(str(w) for w in found if isinstance(w, str) and "/" in w and " " not in w))
    return [{"reference": ref} for ref in refs]


def communication(item: OutboxItem, payload: dict[str, Any]) -> dict[str, Any]:
    """The notification (``payload`` expanded, read_notices.expand) as an R4 Communication with its
    delivery status."""
    texts = message_text(payload)  # English, Russian, Kazakh (i18n/notices.py)
    status, reason = _status(item)
    comm: dict[str, Any] = {
        "resourceType": "Communication",
        "id": f"notification-{item.id}",
        "identifier": [{"system": OUTBOX_SYSTEM, "value": item.key}],  # = the webhook's Idempotency-Key
        "status": status,
        "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": "notification"}]}],
        "priority": "urgent" if item.topic == URGENT_TOPIC else "routine",
        "subject": {"reference": item.partition},
        "recipient": [{"reference": item.partition}],
        "payload": [{"contentString": text} for text in texts],
    }
    about = payload.get("about") if payload.get("resourceType") == "Communication" else _about(payload)
    if about:
        comm["about"] = about
    if reason:
        comm["statusReason"] = {"text": reason}
    if item.delivered_at:
        comm["sent"] = item.delivered_at
    return comm


@operation("notifications", levels=("instance",), types=("Patient",))
async def notifications_operation(call: OperationCall) -> FhirResponse:
    reject_unknown(call, KNOWN)
    count = int_param(call, "_count", 50) or 50
    cursor = int_param(call, "_cursor", None, low=1, high=2**62)
    gate = await open_patient_operation(call)
    items, next_id = await newest(call.access.records, f"Patient/{gate.patient_id}", count, cursor)
    await gate.done()
    entries = [{"fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'urn:kzfhir:outbox:{i.id}')}",
                "resource": communication(i, await expand(call.access.records, orjson.loads(i.payload))),
                "search": {"mode": "match"}} for i in items]
    bundle = page_bundle(call, entries, str(next_id) if next_id is not None else None)
    return FhirResponse(200, dumps(bundle, pretty=call.pretty))
