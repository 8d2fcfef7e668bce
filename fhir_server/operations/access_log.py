"""``Patient/{id}/$access-log`` (AC-24, TM-18): who accessed or changed the patient's data, when
and why — including break-glass reasons and refused attempts — newest first, paged, filterable by
date. Read from the hash-chained audit table by its indexed patient column.

Inputs (GET or POST Parameters): ``_count`` (1-500, default 50), ``_since`` / ``_until`` (a date,
dateTime or instant; its whole precision counts), ``date`` (repeatable, prefixes ``eq ge gt le
lt``), ``_view`` (``auditevent``, the default, or ``compact``), ``deliveries`` (``true`` also lists
the notification deliveries of TM-13) and the paging ``_cursor`` from a ``next`` link.

Output: a ``searchset`` Bundle of patient-view AuditEvents, or with ``_view=compact`` a
``Parameters`` with one ``entry`` per line and a ``next`` link (see access_log_view.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_server.errors import FhirError
from fhir_server.interactions.base import FhirResponse
from fhir_server.jobs.delivery_audit import is_delivery
from fhir_server.jsonio import dumps
from fhir_server.operations.access_log_view import compact_entry, patient_view
from fhir_server.operations.patient_ops import int_param, open_patient_operation, page_bundle, reject_unknown
from fhir_server.operations.registry import OperationCall, operation
from fhir_server.search.dates import MAX_TIME, MIN_TIME, date_range
from fhir_server.search.parse_values import parse_date
from fhir_server.storage.protocols import Store

KNOWN = frozenset({"_count", "_cursor", "_since", "_until", "date", "_view", "deliveries"})
VIEWS = ("auditevent", "compact")
BATCH = 200
#: Events are chained in commit order, stamped when built: a few may be out of time order. The scan
#: stops only once it is this far (microseconds) below the window, so none of them is missed.
SLACK = 60_000_000


@dataclass(frozen=True, slots=True)
class Window:
    low: int = MIN_TIME  # inclusive, microseconds since the epoch
    high: int = MAX_TIME  # exclusive

    def narrowed(self, low: int | None = None, high: int | None = None) -> Window:
        return Window(max(self.low, low if low is not None else MIN_TIME),
                      min(self.high, high if high is not None else MAX_TIME))


def window_of(params: dict[str, list[Any]]) -> Window:
    """The time window from ``_since``, ``_until`` and ``date`` (FHIR R4 search §3.1.1.4.7 prefixes)."""
    window = Window()
    for raw in params.get("_since", []):
        window = window.narrowed(low=parse_date("_since", str(raw)).low)
    for raw in params.get("_until", []):
        window = window.narrowed(high=parse_date("_until", str(raw)).high)
    for raw in params.get("date", []):
        value = parse_date("date", str(raw))
        bounds = {"eq": (value.low, value.high), "ge": (value.low, None), "gt": (value.high, None),
                  "le": (None, value.high), "lt": (None, value.low)}.get(value.prefix)
        if bounds is None:
            raise FhirError("invalid", f"date prefix {value.prefix!r} is not supported here (eq ge gt le lt)",
                            code="not-supported", expression="date")
        window = window.narrowed(*bounds)
    return window


def _recorded(event: dict[str, Any]) -> int:
    found = date_range(str(event.get("recorded", "")))
    return found[0] if found else MIN_TIME


async def scan(store: Store, patient: str, window: Window, count: int, before: int | None,
               deliveries: bool) -> tuple[list[dict[str, Any]], int | None]:
    """Up to ``count`` events of the window, newest first, and the cursor of the next page."""
    found: list[tuple[int, dict[str, Any]]] = []
    while len(found) <= count:  # one more than asked tells whether a next page exists
        rows = await store.audit.events(patient, BATCH, before)
        for seq, event in rows:
            at = _recorded(event)
            if at < window.low - SLACK:
                rows = []
                break
            if window.low <= at < window.high and (deliveries or not is_delivery(event)):
                found.append((seq, event))
        if len(rows) < BATCH:
            break
        before = rows[-1][0]
    more = len(found) > count
    found = found[:count]
    return [event for _, event in found], (found[-1][0] if more else None)


def _flag(call: OperationCall, name: str) -> bool:
    raw = call.one(name)
    if raw in (None, "", False, "false"):
        return False
    if raw in (True, "true"):
        return True
    raise FhirError("invalid", f"parameter {name!r} must be true or false", code="value", expression=name)


@operation("access-log", levels=("instance",), types=("Patient",))
async def access_log_operation(call: OperationCall) -> FhirResponse:
    reject_unknown(call, KNOWN)
    view = str(call.one("_view") or "auditevent")
    if view not in VIEWS:
        raise FhirError("invalid", "_view must be auditevent or compact", code="value", expression="_view")
    count = int_param(call, "_count", 50) or 50
    cursor = int_param(call, "_cursor", None, low=1, high=2**62)
    window = window_of(call.params())
    gate = await open_patient_operation(call)
    events, next_seq = await scan(call.access.records, f"Patient/{gate.patient_id}", window, count, cursor,
                                  _flag(call, "deliveries"))
    await gate.done()
    next_cursor = str(next_seq) if next_seq is not None else None
    bundle = page_bundle(call, [_entry(e) for e in events], next_cursor)
    if view == "compact":
        return FhirResponse(200, dumps(_compact(events, bundle), pretty=call.pretty))
    return FhirResponse(200, dumps(bundle, pretty=call.pretty))


def _entry(event: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": f"urn:uuid:{event.get('id')}", "resource": patient_view(event),
            "search": {"mode": "match"}}


def _compact(events: list[dict[str, Any]], bundle: dict[str, Any]) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [compact_entry(e) for e in events]
    for link in bundle["link"]:
        if link["relation"] == "next":
            parameters.append({"name": "next", "valueUri": link["url"]})
    return {"resourceType": "Parameters", "parameter": parameters}
