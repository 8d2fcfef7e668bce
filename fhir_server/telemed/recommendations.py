"""Recommendations to the patient on treatment adherence and lifestyle, and reminders of them (TM-16).

* A **recommendation** is a Communication whose ``topic`` is a ``kz-recommendation-kind`` code (``adherence``,
  ``lifestyle``), ``basedOn`` the patient's CarePlan, ``subject`` the patient, ``payload`` its text. The patient
  reads them like any of their data (``GET Communication?subject=…&based-on=CarePlan/…``); when a medical worker
  sends one, the patient is also told in their notification channel (outbox topic ``notification``), in the same
  write unit.
* A **reminder** is an active CommunicationRequest ``basedOn`` the CarePlan with a ``kz-reminder-schedule``
  extension (a Timing: ``repeat.period`` + ``periodUnit`` of min, h, d or wk, ``frequency``, ``boundsPeriod.start``
  and ``count`` or ``boundsPeriod.end``). The reminder scheduler queues each occurrence that has come in the
  outbox (one message per occurrence, idempotent by key), so the outbox worker delivers it; revoking the request
  (``status`` other than active) stops the rest. Occurrences more than a day old when first seen are skipped: a
  server that was down does not send a burst of stale reminders.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from fhir_server.fhirtime import seconds_range
from fhir_server.search.in_unit import find_in_unit
from fhir_server.security.audit.read_notices import NOTIFY_TOPIC
from fhir_server.storage.protocols import Store, StoredResource, TxView
from fhir_server.validation.issues import Issue

KIND = "https://fhir.kzfhir.kz/CodeSystem/kz-recommendation-kind"
SCHEDULE = "https://fhir.kzfhir.kz/StructureDefinition/kz-reminder-schedule"
_UNITS = {"min": 60.0, "h": 3600.0, "d": 86_400.0, "wk": 604_800.0}
MAX_OCCURRENCES = 366
LOOKBACK = 86_400.0
MAX_ACTIVE = 5000  # active requests read per round (docs/consultation.md "Not yet")
log = logging.getLogger("kzfhir.reminders")


def _kinds(concepts: Any) -> set[str]:
    items = concepts if isinstance(concepts, list) else [concepts]
    return {str(c.get("code")) for concept in items if isinstance(concept, dict)
            for c in concept.get("coding", []) or [] if isinstance(c, dict) and c.get("system") == KIND}


def _patient(resource: dict[str, Any]) -> str | None:
    ref = (resource.get("subject") or {}).get("reference")
    return ref if isinstance(ref, str) and ref.startswith("Patient/") else None


def _care_plan(resource: dict[str, Any]) -> bool:
    return any(str((b or {}).get("reference", "")).startswith("CarePlan/") for b in resource.get("basedOn", []) or [])


def _text(resource: dict[str, Any]) -> str:
    return " ".join(str(p["contentString"]) for p in resource.get("payload", []) or []
                    if isinstance(p, dict) and isinstance(p.get("contentString"), str))


def _schedule(request: dict[str, Any]) -> dict[str, Any] | None:
    for ext in request.get("extension", []) or []:
        if isinstance(ext, dict) and ext.get("url") == SCHEDULE and isinstance(ext.get("valueTiming"), dict):
            return dict(ext["valueTiming"].get("repeat") or {})
    return None


def occurrences(request: dict[str, Any]) -> list[float]:
    """The reminder instants (epoch seconds) of a CommunicationRequest's schedule, at most MAX_OCCURRENCES."""
    repeat = _schedule(request)
    if repeat is None:
        return []
    unit = _UNITS.get(str(repeat.get("periodUnit")))
    start = seconds_range((repeat.get("boundsPeriod") or {}).get("start"))
    end = seconds_range((repeat.get("boundsPeriod") or {}).get("end"))
    period, frequency = float(repeat.get("period") or 0), int(repeat.get("frequency") or 1)
    if unit is None or start is None or period <= 0 or frequency < 1:
        return []
    step = period * unit / frequency
    count = min(int(repeat.get("count") or MAX_OCCURRENCES), MAX_OCCURRENCES)
    out = []
    for n in range(count):
        at = start[0] + n * step
        if end is not None and at > end[1]:
            break
        out.append(at)
    return out


def recommendation_issues(resource: dict[str, Any], mode: str) -> list[Issue]:
    """A ``Services.extra_validators`` entry: recommendations and reminders name the patient, the care plan, a
    text, and (reminders) a usable schedule."""
    rtype = resource.get("resourceType")
    if rtype == "Communication" and _kinds(resource.get("topic")):
        where = "Communication"
    elif rtype == "CommunicationRequest" and _schedule(resource) is not None:
        where = "CommunicationRequest"
    else:
        return []
    issues = []
    if _patient(resource) is None:
        issues.append(Issue("error", "required", "a recommendation is to a patient: subject Reference(Patient)",
                            f"{where}.subject"))
    if not _care_plan(resource):
        issues.append(Issue("error", "required", "a recommendation is tied to the care plan: basedOn "
                            "Reference(CarePlan) (TM-16)", f"{where}.basedOn"))
    if not _text(resource):
        issues.append(Issue("error", "required", "a recommendation says what to do: payload.contentString",
                            f"{where}.payload"))
    if rtype == "CommunicationRequest" and not occurrences(resource):
        issues.append(Issue("error", "value", "the reminder schedule needs repeat.period, periodUnit (min, h, d, "
                            "wk), boundsPeriod.start and count or boundsPeriod.end", f"{where}.extension"))
    return issues


def _message(patient: str, text: str, about: str, category: str) -> bytes:
    return orjson.dumps({
        "resourceType": "Communication", "id": str(uuid.uuid4()), "status": "preparation",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/communication-category",
                                  "code": category}]}],
        "priority": "routine", "recipient": [{"reference": patient}], "about": [{"reference": about}],
        "payload": [{"contentString": text}]})


def recommendation_sent(view: TxView, services: Any, previous: bytes | None, resource: dict[str, Any],
                        stored: StoredResource) -> None:
    """A change hook: a recommendation that is sent (status completed) now goes to the patient's channel."""
    if resource.get("resourceType") != "Communication" or not _kinds(resource.get("topic")):
        return
    before = orjson.loads(previous) if previous else None
    if resource.get("status") != "completed" or (before is not None and before.get("status") == "completed"):
        return
    patient = _patient(resource)
    if patient is None:
        return
    view.enqueue(NOTIFY_TOPIC, patient, f"recommendation:{stored.id}:{stored.version}",
                 _message(patient, _text(resource), f"Communication/{stored.id}", "instruction"))


def queue_due(view: TxView, now: float) -> int:
    """Queue every reminder occurrence that has come (within the look-back); returns how many were new."""
    queued = 0
    for request in find_in_unit(view, "CommunicationRequest", [("status", "active")], MAX_ACTIVE):
        patient = _patient(request)
        if patient is None or _schedule(request) is None:
            continue
        for n, at in enumerate(occurrences(request)):
            if now - LOOKBACK <= at <= now:
                view.enqueue(NOTIFY_TOPIC, patient, f"reminder:{request['id']}:{n}",
                             _message(patient, _text(request), f"CommunicationRequest/{request['id']}", "reminder"))
                queued += 1
    return queued


class ReminderScheduler:
    """Runs ``queue_due`` every ``interval`` seconds in a write unit of its own (the outbox dedupes keys)."""

    def __init__(self, store: Store, interval: float = 60.0) -> None:
        self.store, self.interval = store, interval
        self._task: asyncio.Task[None] | None = None

    async def run_once(self, now: datetime | None = None) -> int:
        at = (now or datetime.now(UTC)).timestamp()
        return await self.store.transaction(lambda view: queue_due(view, at))

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # a failed round must not stop the reminders for good
                log.exception("reminders: a round failed")
            await asyncio.sleep(self.interval)

