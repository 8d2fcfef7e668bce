"""Patient notifications of reads recorded in read blocks (AC-18), queued with the blocks themselves.

Every read of a patient's data by someone else must reach the patient (AC-18). Read blocks are
chained from the read-audit journal in one transaction (storage/sqlite/audit/journal.py); the same
transaction queues, for each patient whose data someone else read in the blocks chained together,
ONE ``notification`` outbox message that names those blocks (``{"kind": "reads", "patient",
"blocks"}``): a digest of about a second of reads, not one message per read. Its lines (one
access-log line per read) are rendered from the chain when the message is delivered or listed
(:func:`expand`), so chaining stays cheap whether or not a channel is configured. The outbox
worker delivers it like any other notification (digests per patient, retries, delivery audit), and
``Patient/{id}/$notifications`` lists it.

Reads of the patient's own data by the patient are not notified (as before, enforcement.py).
"""

from __future__ import annotations

from typing import Any

import orjson

from fhir_server.security.audit.access_log import access_log_entry
from fhir_server.security.audit.read_blocks import KEY, PATIENT
from fhir_server.storage.protocols import Store

NOTIFY_TOPIC = "notification"  # the patient notification topic (security/session.py uses it too)
READS = "reads"


def notices(blocks_by_patient: dict[str, list[int]]) -> list[tuple[str, str, str, bytes]]:
    """(topic, partition, key, payload) of the notifications of the blocks chained together: one per
    patient (bare id) naming that patient's blocks."""
    found = []
    for patient, blocks in sorted(blocks_by_patient.items()):
        partition = f"Patient/{patient}"
        payload = {"kind": READS, "patient": partition, "partition": partition, "blocks": blocks}
        found.append((NOTIFY_TOPIC, partition, f"reads:{blocks[0]}-{blocks[-1]}:{patient}", orjson.dumps(payload)))
    return found


def others_read(records: bytes, callers: dict[str, str | None], patients: set[str]) -> set[str]:
    """The patients (bare ids) of a block whose data someone other than themself read. ``records``
    are the block's record arrays joined by commas, ``callers`` each template key's fhirUser; the
    records are parsed only when a patient read something (the usual practitioner traffic is not)."""
    selves = {c for c in callers.values() if c and c.startswith("Patient/")}
    if not selves:
        return patients
    if len(callers) == 1 and {f"Patient/{p}" for p in patients} <= selves:
        return set()  # one patient reading their own data only: the patient-app case
    return {r[PATIENT] for r in orjson.loads(b"[" + records + b"]")
            if r[PATIENT] and callers.get(r[KEY]) != f"Patient/{r[PATIENT]}"}


async def expand(store: Store, payload: dict[str, Any]) -> dict[str, Any]:
    """A ``reads`` message as the patient gets it: a digest with one access-log line per read by
    someone else; any other payload as it is."""
    if payload.get("kind") != READS:
        return payload
    patient = str(payload["patient"])
    events = [event for block in payload["blocks"]
              for event in await store.audit.block_events(int(block), patient)]
    items = [{"patient": patient, **access_log_entry(event)} for event in events
             if _caller(event) != patient]
    return {"digest": True, "patient": patient, "partition": patient, "count": len(items), "items": items}


def _caller(event: dict[str, Any]) -> str | None:
    for agent in event.get("agent", []):
        if agent.get("requestor") and isinstance((agent.get("who") or {}).get("reference"), str):
            return str(agent["who"]["reference"])
    return None
