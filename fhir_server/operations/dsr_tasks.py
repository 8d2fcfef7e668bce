"""Data-subject requests as R4 Tasks (AC-15, AC-16, AC-17, AC-27): building, answering, deadlines.

A request is a ``Task`` with ``code`` from ``https://fhir.kzfhir.kz/CodeSystem/kz-data-subject-request``
(``information`` AC-15/AC-16, ``correction`` AC-27), ``for`` the patient, ``authoredOn`` when it
was received and ``restriction.period.end`` the due date: the end of the 3rd working day after
receipt by the Kazakhstan working-day calendar (docs/working-days.md). It is answered by
``completed`` or ``rejected``; a refusal must give its reason in ``statusReason`` (AC-17).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from fhir_server.search.dates import date_range
from fhir_server.security.calendar import KZ_TZ, WorkingCalendar, working_deadline
from fhir_server.security.policy.rules import DSR_TASK_SYSTEM
from fhir_server.validation.issues import Issue

KINDS = {"information": "Information about personal medical data (AC-15, AC-16)",
         "correction": "Correction or addition of personal medical data (AC-27)",
         "destruction": "Destruction of data collected in breach of the rules (AC-22)"}
ANSWER_DAYS = 3  # AC-16, AC-17, AC-27: "within 3 working days"
FINAL_STATUSES = frozenset({"completed", "rejected", "cancelled", "failed", "entered-in-error"})
OPEN_STATUSES = ("draft", "requested", "received", "accepted", "ready", "in-progress", "on-hold")


class Clock:
    """The time the DSR operations go by; replace ``now`` to simulate another day (tests, drills)."""

    def __init__(self) -> None:
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)


CLOCK = Clock()


@cache
def calendar_for(override: Path | None) -> WorkingCalendar:
    """The shipped calendar with the operator's override (``KZFHIR_CALENDAR_OVERRIDE``), loaded once."""
    return WorkingCalendar.load(override)


def kz_text(moment: datetime) -> str:
    """A FHIR dateTime in Kazakhstan time, to the second (``2025-03-20T10:00:00+05:00``)."""
    return moment.astimezone(KZ_TZ).isoformat(timespec="seconds")


def is_dsr(task: dict[str, Any]) -> bool:
    codings = (task.get("code") or {}).get("coding", []) or []
    return any(isinstance(c, dict) and c.get("system") == DSR_TASK_SYSTEM for c in codings)


def request_task(kind: str, patient_id: str, received: datetime, calendar: WorkingCalendar, *,
                 requester: str | None, description: str | None, changes: list[str],
                 focus: dict[str, Any] | None) -> dict[str, Any]:
    """A new request: status ``requested``, due at the end of the 3rd working day after receipt."""
    task: dict[str, Any] = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "priority": "routine",
        "code": {"coding": [{"system": DSR_TASK_SYSTEM, "code": kind, "display": KINDS[kind]}]},
        "for": {"reference": f"Patient/{patient_id}"},
        "authoredOn": kz_text(received),
        "restriction": {"period": {"end": kz_text(working_deadline(received, ANSWER_DAYS, calendar))}},
    }
    if description:
        task["description"] = description
    if requester:
        task["requester"] = {"reference": requester}
    if focus:
        task["focus"] = focus
    if changes:
        task["input"] = [{"type": {"text": "requested-change"}, "valueString": text} for text in changes]
    return task


def due_high(task: dict[str, Any]) -> int | None:
    """The exclusive end (microseconds) of the due instant, or None without a due date."""
    end = ((task.get("restriction") or {}).get("period") or {}).get("end")
    found = date_range(end) if isinstance(end, str) else None
    return found[1] if found else None


def is_overdue(task: dict[str, Any], now: datetime) -> bool:
    """Still open and past its due date (AC-16/AC-17/AC-27 deadlines)."""
    high = due_high(task)
    if task.get("status") in FINAL_STATUSES or high is None:
        return False
    return int(now.timestamp() * 1_000_000) >= high


def answered(task: dict[str, Any], outcome: str, now: datetime, *, reason: str | None, note: str | None,
             answerer: str | None, output: dict[str, Any] | None) -> dict[str, Any]:
    """The request answered: ``completed`` or ``rejected`` (with its reason, AC-17)."""
    new = {k: v for k, v in task.items() if k not in ("meta", "statusReason", "businessStatus")}
    new["status"] = outcome
    if reason:
        new["statusReason"] = {"text": reason}
    high = due_high(task)
    late = high is not None and int(now.timestamp() * 1_000_000) >= high
    new["businessStatus"] = {"text": "answered late" if late else "answered on time"}
    new["lastModified"] = kz_text(now)
    new["executionPeriod"] = {**(task.get("executionPeriod") or {}), "end": kz_text(now)}
    if answerer:
        new["owner"] = {"reference": answerer}
    outputs = list(task.get("output", []) or [])
    if note:
        outputs.append({"type": {"text": "answer"}, "valueString": note})
    if output:
        outputs.append({"type": {"text": "answer-document"}, "valueReference": output})
    if outputs:
        new["output"] = outputs
    return new


def dsr_task_issues(resource: dict[str, Any], mode: str = "create") -> list[Issue]:
    """Write-time rules for DSR Tasks, whatever the route (usable as a ``Services.extra_validators``
    entry): a due date is required, and a refusal must carry its reason (AC-17)."""
    if resource.get("resourceType") != "Task" or not is_dsr(resource):
        return []
    issues: list[Issue] = []
    if due_high(resource) is None:
        issues.append(Issue("error", "required", "a data-subject request needs its due date in "
                            "restriction.period.end (AC-16, AC-27)", "Task.restriction.period.end"))
    reason = resource.get("statusReason") or {}
    if resource.get("status") == "rejected" and not (reason.get("text") or reason.get("coding")):
        issues.append(Issue("error", "required", "a refused data-subject request must give its reason in "
                            "statusReason (AC-17)", "Task.statusReason"))
    return issues
