"""Patient notifications of reads recorded in read blocks (AC-18), written with the block itself.

Every read of a patient's data by someone else must reach the patient (AC-18). A read block is
chained from the read-audit journal in one transaction (storage/sqlite/audit_journal.py); the same
transaction queues, for each patient the block's reads are about, ONE ``notification`` outbox
message listing each of those reads as an access-log line — a digest of the reads chained together
(a fraction of a second of traffic), instead of one message per read. The outbox worker delivers it
like any other notification (digests per patient, retries, delivery audit), and
``Patient/{id}/$notifications`` lists it.

Reads of the patient's own data by the patient are not notified (as before, enforcement.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from fhir_server.security.audit.access_log import access_log_entry
from fhir_server.security.audit.read_blocks import ID, KEY, MICROS, PATIENT, TYPE, VERSION, micros_text

NOTIFY_TOPIC = "notification"  # as security/enforcement.py: the patient notification topic


class TemplateNote:
    """What a template contributes to each access-log line, computed once per template."""

    __slots__ = ("caller", "line")

    def __init__(self, caller: str | None, event: dict[str, Any]) -> None:
        self.caller = caller
        self.line = {k: v for k, v in access_log_entry(event).items() if k not in ("id", "when", "what")}


def notices(block_seq: int, records: Iterable[list[Any]], notes: dict[str, TemplateNote]
            ) -> list[tuple[str, str, str, bytes]]:
    """(topic, partition, key, payload) of the block's notifications: one per patient whose data
    someone other than the patient read. ``records`` are the block's records in order."""
    lines: dict[str, list[dict[str, Any]]] = {}
    for index, record in enumerate(records):
        patient = record[PATIENT]
        note = notes[record[KEY]]
        if not patient or note.caller == f"Patient/{patient}":
            continue
        lines.setdefault(patient, []).append({
            "patient": f"Patient/{patient}", "id": f"r{block_seq}-{index}", "when": micros_text(record[MICROS]),
            **note.line, "what": [f"{record[TYPE]}/{record[ID]}/_history/{record[VERSION]}"]})
    found = []
    for patient, items in sorted(lines.items()):
        partition = f"Patient/{patient}"
        payload = {"digest": True, "patient": partition, "partition": partition, "count": len(items), "items": items}
        found.append((NOTIFY_TOPIC, partition, f"reads:{block_seq}:{patient}", orjson.dumps(payload)))
    return found
