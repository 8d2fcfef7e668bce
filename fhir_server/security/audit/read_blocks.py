"""Compact, chained audit records of plain reads (issue 5 §3, AC-14, TM-13).

A read by id is the request a FHIR server answers most, and its AuditEvent differs from the previous
read of the same caller only in a few values: the event id, when, the request id, which version
of which resource, which patient. Building and chaining a full BALP event per read cost about
150 µs. Here the rest is written once, as a *template*, and each read becomes a short record:

* a **template row** of ``audit_chain`` (``event_id`` ``t{seq}``) holds a BALP AuditEvent built by
  :func:`balp.rest_event` itself for one caller, verdict and interaction; rendering overwrites the
  per-read values at the places ``rest_event`` puts them;
* a **block row** (``event_id`` ``r{seq}``) holds the records of the reads chained together, as the
  read-audit journal wrote them (``["R", template key, micros, request id, type, id, version,
  patient]``), and which template row each key names.

Both are ordinary chain rows, so changing, dropping or reordering any record or template breaks the
chain like any other row. The events of a block are rendered on demand with ids ``r{seq}-{n}`` and
are exactly what ``rest_event`` would have produced (tests/security/test_read_blocks.py compares
them). The SQLite store's ``audit_patient_blocks`` lists each patient's blocks (append-only, one row
per patient per indexing round, checked by storage/sqlite/audit/verify.py) so ``Patient/$access-log``
finds a patient's reads without scanning the chain; blocks newer than its mark are scanned.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson

from fhir_server.security.audit.balp import AuditTarget, rest_event
from fhir_server.security.context import RequestContext
from fhir_server.security.policy.decision import Verdict

BLOCK_KIND = "read-block"
TEMPLATE_KIND = "read-template"
#: A chain position packs (row seq, record index) into one sortable integer; blocks hold fewer records.
POSITION_BITS = 12
MAX_RECORDS = (1 << POSITION_BITS) - 1
EVENT_ID = re.compile(r"^r(\d{1,18})-(\d{1,4})$")

# record fields (index 0 is the journal's line kind, "R")
KEY, MICROS, REQUEST_ID, TYPE, ID, VERSION, PATIENT = range(1, 8)


def position(seq: int, index: int = 0) -> int:
    return (seq << POSITION_BITS) | index


def seq_of(pos: int) -> int:
    return pos >> POSITION_BITS


def micros_text(micros: int) -> str:
    """R4 instant with millisecond precision, as ``to_instant_text`` writes it."""
    moment = datetime.fromtimestamp(micros / 1_000_000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class ReadTemplate:
    """The BALP event of reads by one caller under one verdict. ``key`` names it in the read-audit
    journal once written there (storage/sqlite/audit/journal.py)."""

    __slots__ = ("caller", "event", "key")

    def __init__(self, event: dict[str, Any], caller: str | None) -> None:
        self.caller = caller  # the caller's fhirUser: no notification for their own data (AC-18)
        self.event = event
        self.key: str | None = None


def template_bytes(caller: str | None, event: dict[str, Any]) -> bytes:
    """The stored (and hashed) bytes of a template row."""
    return orjson.dumps({"kind": TEMPLATE_KIND, "caller": caller, "event": event}, option=orjson.OPT_SORT_KEYS)


def build_template(ctx: RequestContext, verdict: Verdict, with_patient: bool) -> ReadTemplate:
    """The template for reads by ``ctx`` judged ``verdict``: ``rest_event``'s own output, whose
    per-read values (id, recorded, request id, resource, patient) each read overwrites."""
    target = AuditTarget("read", "Resource", "template", "1", patient_id="template" if with_patient else None)
    event = rest_event(ctx, target, verdict, recorded=0.0)
    # Fixed where every read overwrites (``_fill``), so equal templates have equal bytes and
    # ``ReadGate`` can reuse one instead of chaining a new ~2.5 KB row after each fact change.
    event["id"] = "template"
    return ReadTemplate(event, ctx.fhir_user)


def block_bytes(records: bytes, templates: dict[str, int], recorded: str) -> bytes:
    """The stored (and hashed) bytes of a block: ``records`` are journal record arrays joined by
    commas, ``templates`` maps their keys to template rows, ``recorded`` is the first one's instant."""
    return (b'{"kind":"' + BLOCK_KIND.encode() + b'","recorded":' + orjson.dumps(recorded)
            + b',"templates":' + orjson.dumps(templates, option=orjson.OPT_SORT_KEYS)
            + b',"records":[' + records + b"]}")


def parse_block(data: bytes) -> dict[str, Any]:
    block: dict[str, Any] = orjson.loads(data)
    if block.get("kind") != BLOCK_KIND or not isinstance(block.get("records"), list) \
            or not isinstance(block.get("templates"), dict):
        raise ValueError("not a read block")
    for record in block["records"]:
        if not (isinstance(record, list) and len(record) == 8 and record[0] == "R"
                and isinstance(block["templates"].get(record[KEY]), int)):
            raise ValueError("a read record is malformed or names no template")
    return block


def parse_template(data: bytes) -> dict[str, Any]:
    template: dict[str, Any] = orjson.loads(data)
    if template.get("kind") != TEMPLATE_KIND or not isinstance(template.get("event"), dict):
        raise ValueError("not a read template")
    return template


def block_patients(block: dict[str, Any]) -> list[str]:
    """``Patient/{id}`` of every record, sorted and distinct (what ``audit_patient_blocks`` lists)."""
    return sorted({f"Patient/{r[PATIENT]}" for r in block["records"] if r[PATIENT]})


def _fill(event: dict[str, Any], seq: int, index: int, record: list[Any]) -> dict[str, Any]:
    """Put one record's values where ``rest_event`` puts them (balp.py ``_envelope``,
    ``_transaction_entity`` and ``_target_entities``)."""
    event["id"] = f"r{seq}-{index}"
    event["recorded"] = micros_text(record[MICROS])
    for entity in event.get("entity", []):
        if (entity.get("type") or {}).get("code") == "XrequestId":
            entity["what"]["identifier"]["value"] = record[REQUEST_ID]
        role = (entity.get("role") or {}).get("code")
        if role == "4":
            entity["what"]["reference"] = f"{record[TYPE]}/{record[ID]}/_history/{record[VERSION]}"
        elif role == "1":
            entity["what"]["reference"] = f"Patient/{record[PATIENT]}"
    return event


class BlockView:
    """Renders the events of one stored block; ``template`` gives a template row's bytes by seq."""

    def __init__(self, seq: int, data: bytes, template: Callable[[int], bytes]) -> None:
        self.seq = seq
        block = parse_block(data)
        self.records: list[list[Any]] = block["records"]
        self.templates: dict[str, int] = block["templates"]
        self._template = template
        self._events: dict[int, bytes] = {}

    def __len__(self) -> int:
        return len(self.records)

    def _template_event(self, seq: int) -> bytes:
        raw = self._events.get(seq)
        if raw is None:
            raw = self._events[seq] = orjson.dumps(parse_template(self._template(seq))["event"])
        return raw

    def patient(self, index: int) -> str | None:
        value = self.records[index][PATIENT]
        return f"Patient/{value}" if value else None

    def event(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        return _fill(orjson.loads(self._template_event(self.templates[record[KEY]])), self.seq, index, record)

    def events(self, patient: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
        """(position, event) newest first, only those about ``patient`` (``Patient/{id}``) if given."""
        for index in range(len(self) - 1, -1, -1):
            if patient is None or self.patient(index) == patient:
                yield position(self.seq, index), self.event(index)
