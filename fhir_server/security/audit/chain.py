"""The audit hash chain's rules (TM-13, AC-14): AuditEvents in a SHA-256 hash chain. Pure: no SQL.

Each row stores the canonical bytes of one AuditEvent and ``hash = SHA-256(prev_hash || "\\n" ||
data)``, ``prev_hash`` being the previous row's hash (``GENESIS_HASH`` for row 1). Changing,
deleting, inserting or reordering any row breaks the chain at that point, which
``verify_chain`` reports with the first broken ``seq``.

The rows live in a backend (the audit seam, storage/audit.py; SQLite: storage/sqlite/audit/), which
gets these rules injected (``rules.CHAIN_RULES``). A backend's guards against changing rows (SQLite's
triggers) stop mistakes and tampering through the application; they do not stop someone with write
access to the database itself, who can drop them and rewrite rows. That is why verification exists,
and why rewriting the *tail* of the chain (recomputing every later hash) is only caught against an
anchor: record ``(seq, hash)`` of the head somewhere else from time to time (a signed report, a
ticket, another system) and pass it to ``verify_chain(..., anchors=...)`` or
``kzfhir audit verify --anchor SEQ:HASH``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from fhir_server.storage.audit import ChainReport, ChainStart

__all__ = ["GENESIS_HASH", "ChainReport", "ChainRow", "canonical_bytes", "link", "make_row", "parse_anchor",
           "patient_of", "verify_chain"]

GENESIS_HASH = "0" * 64


@dataclass(frozen=True, slots=True)
class ChainRow:
    seq: int
    event_id: str
    recorded: str
    patient: str | None
    data: bytes
    prev_hash: str
    hash: str

    def as_tuple(self) -> tuple[int, str, str, str | None, bytes, str, str]:
        return (self.seq, self.event_id, self.recorded, self.patient, self.data, self.prev_hash, self.hash)


def canonical_bytes(event: Mapping[str, Any]) -> bytes:
    """The bytes that are stored and hashed: compact JSON with sorted keys."""
    return orjson.dumps(event, option=orjson.OPT_SORT_KEYS)


def link(prev_hash: str, event_bytes: bytes) -> str:
    """The hash of a row: SHA-256 over the previous hash, a newline and the event bytes."""
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + event_bytes).hexdigest()


def patient_of(event: Mapping[str, Any]) -> str | None:
    """``Patient/{id}`` of the event's patient entity (object-role 1), for the indexed column."""
    for entity in event.get("entity", []) or []:
        role = entity.get("role") or {}
        if role.get("code") == "1" and str(role.get("system", "")).endswith("/object-role"):
            reference = (entity.get("what") or {}).get("reference")
            return reference if isinstance(reference, str) else None
    return None


def make_row(seq: int, prev_hash: str, event: Mapping[str, Any]) -> ChainRow:
    """The chain row for ``event`` placed after a row whose hash is ``prev_hash``."""
    data = canonical_bytes(event)
    return ChainRow(
        seq, str(event["id"]), str(event["recorded"]), patient_of(event), data, prev_hash, link(prev_hash, data)
    )


def _special_problem(seq: int, event_id: str, recorded: str, patient: str | None, body: bytes,
                     templates: set[int]) -> str | None:
    """Checks of read blocks and read templates: their own shape, and that every record of a block
    names a template row earlier in the chain."""
    from fhir_server.security.audit.read_blocks import parse_block, parse_template

    if patient is not None:
        return "read blocks and templates have no patient column"
    try:
        if event_id[0] == "t":
            parse_template(body)
            templates.add(seq)
            return None
        block = parse_block(body)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        return "a read block or template row does not hold one"
    if block.get("recorded") != recorded:
        return "indexed column recorded disagrees with the read block"
    if any(seq not in templates for seq in block["templates"].values()):
        return "a read block names no earlier template row"
    return None


def _row_problem(row: tuple[Any, ...], expected_seq: int, prev: str, templates: set[int]) -> str | None:
    seq, event_id, recorded, patient, data, prev_hash, stored_hash = row
    if seq != expected_seq:
        return f"expected seq {expected_seq} here: rows were deleted, inserted or reordered"
    if prev_hash != prev:
        return "prev_hash does not match the previous row: a row before it was changed or removed"
    body = bytes(data) if not isinstance(data, str) else data.encode("utf-8")
    if link(prev_hash, body) != stored_hash:
        return "hash does not match the row's content: the event was changed"
    if event_id in (f"r{seq}", f"t{seq}"):
        return _special_problem(seq, event_id, recorded, patient, body, templates)
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "event data is not JSON"
    if (event.get("id"), event.get("recorded"), patient_of(event)) != (event_id, recorded, patient):
        return "indexed columns (event_id, recorded, patient) disagree with the event"
    return None


def parse_anchor(text: str) -> tuple[int, str]:
    """An anchor ``SEQ:HASH`` (a chain row's seq and its 64 hex digit hash, recorded elsewhere earlier), as
    ``kzfhir audit verify --anchor`` and ``$audit-verify?anchor=`` take it; ValueError if it is not one."""
    seq, sep, digest = text.partition(":")
    if not sep or not (seq.isascii() and seq.isdigit()) or len(digest) != 64 or \
            any(c not in "0123456789abcdefABCDEF" for c in digest):
        raise ValueError("anchor must be SEQ:HASH (64 hex digits)")
    return int(seq), digest.lower()


def verify_chain(rows: Iterable[tuple[Any, ...]], anchors: Mapping[int, str] | None = None,
                 start: ChainStart | None = None) -> ChainReport:
    """Check rows ``(seq, event_id, recorded, patient, data, prev_hash, hash)`` in seq order.

    ``anchors`` maps seq -> hash recorded earlier outside the database; a missing or different
    anchored row means the chain was truncated or rewritten from that point. ``start``: the rows
    continue an archived prefix (the first must be ``start.seq + 1`` linking to ``start.hash``);
    anchors inside the prefix can only be checked against its last row.
    """
    expected, prev, count = 1, GENESIS_HASH, 0
    pending = dict(anchors or {})
    templates: set[int] = set()
    if start is not None:
        expected, prev, templates = start.seq + 1, start.hash, set(start.templates)
        if pending.get(start.seq, start.hash) != start.hash:
            return ChainReport(False, 0, start.seq, start.hash, start.seq,
                               "hash differs from the recorded anchor: the chain was rewritten")
        pending = {seq: digest for seq, digest in pending.items() if seq > start.seq}
    for row in rows:
        problem = _row_problem(tuple(row), expected, prev, templates)
        if problem is None and row[0] in pending and pending.pop(row[0]) != row[6]:
            problem = "hash differs from the recorded anchor: the chain was rewritten"
        if problem is not None:
            return ChainReport(False, count, expected - 1, prev, int(row[0]), problem)
        prev, expected, count = str(row[6]), expected + 1, count + 1
    if pending:
        missing = min(pending)
        return ChainReport(
            False, count, expected - 1, prev, missing, "anchored row is missing: the chain was truncated"
        )
    return ChainReport(True, count, expected - 1, prev)
