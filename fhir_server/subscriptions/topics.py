"""The Kazakhstan SubscriptionTopics (issue 15 §3): shipped as data, matched by code.

R4 has no SubscriptionTopic resource. The Subscriptions Backport IG 1.1.0 (R4 guidance) lets an R4
server refer to topics by canonical URL only; to make them readable here they are published as R4
``Basic`` resources in the cross-version form of the R5 SubscriptionTopic (code
``http://hl7.org/fhir/fhir-types#SubscriptionTopic``, extensions
``http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.*``), from
``fhir_server/definitions/data/subscription-topics.json``. Their ``canFilterBy`` entries are the
filters a Subscription may use; the triggers of writes are evaluated by the functions in ``TRIGGERS``
(the ``queryCriteria`` in the data say the same in words a client can read), once per stored version,
by the one event source (events.py); the server's own events (``eventTrigger``: a critical reading
recorded, a record submitted to the NEHP) are raised there by the code that makes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import orjson

from fhir_server.jobs.appointment_notices import _event as appointment_event
from fhir_server.operations.dsr_tasks import FINAL_STATUSES, due_high, is_dsr

XVER = "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic"
KZ_TOPICS = "https://fhir.kzfhir.kz/SubscriptionTopic"
APPOINTMENT = f"{KZ_TOPICS}/appointment"  # TM-09
CRITICAL_READING = f"{KZ_TOPICS}/critical-reading"  # TM-26
CONSENT = f"{KZ_TOPICS}/consent"  # AC-18
NEHP_SUBMISSION = f"{KZ_TOPICS}/nehp-submission"  # TM-11
DATA_SUBJECT_REQUEST = f"{KZ_TOPICS}/data-subject-request"  # AC-16


@dataclass(frozen=True, slots=True)
class Topic:
    url: str
    resource_id: str  # Basic/[id]
    title: str
    resources: frozenset[str]  # the types whose writes can trigger it
    filters: frozenset[tuple[str, str]]  # (resource type, filter parameter) from canFilterBy


@dataclass(frozen=True, slots=True)
class Event:
    """A triggered topic: the focus and the resources that give it context (references)."""

    topic: str
    focus: dict[str, Any]
    context: tuple[str, ...] = ()
    code: str | None = None  # what happened, for the listeners (an appointment "booked", "cancelled" ...)
    detail: dict[str, Any] | None = field(default=None, compare=False)  # what the producer tells listeners


def _ext(parts: list[dict[str, Any]], url: str) -> list[dict[str, Any]]:
    return [p for p in parts if isinstance(p, dict) and p.get("url") == url]


def _value(ext: dict[str, Any]) -> Any:
    return next((v for k, v in ext.items() if k.startswith("value")), None)


def _parse(basic: dict[str, Any]) -> Topic:
    ext = basic.get("extension", [])
    url = str(_value(_ext(ext, f"{XVER}.url")[0]))
    title = str(_value(_ext(ext, f"{XVER}.title")[0]))
    resources_: set[str] = set()
    for trigger in [*_ext(ext, f"{XVER}.resourceTrigger"), *_ext(ext, f"{XVER}.eventTrigger")]:
        for part in _ext(trigger.get("extension", []), "resource"):
            resources_.add(str(_value(part)).rsplit("/", 1)[-1])
    filters = set()
    for flt in _ext(ext, f"{XVER}.canFilterBy"):
        parts = flt.get("extension", [])
        rtype = str(_value(_ext(parts, "resource")[0])).rsplit("/", 1)[-1]
        filters.add((rtype, str(_value(_ext(parts, "filterParameter")[0]))))
    return Topic(url, str(basic["id"]), title, frozenset(resources_), frozenset(filters))


@cache
def topic_resources() -> tuple[dict[str, Any], ...]:
    """The topics as the Basic resources the server publishes (definitions/data)."""
    data = resources.files("fhir_server.definitions").joinpath("data", "subscription-topics.json").read_bytes()
    return tuple(orjson.loads(data))


@cache
def topics() -> dict[str, Topic]:
    """Every topic this server supports, by canonical URL."""
    parsed = [_parse(r) for r in topic_resources()]
    return {t.url: t for t in parsed}


# -- triggers: (previous version or None, current version) -> Event or None -------------------------
Trigger = Callable[[dict[str, Any] | None, dict[str, Any]], Event | None]


def _appointment(previous: dict[str, Any] | None, current: dict[str, Any]) -> Event | None:
    if current.get("resourceType") != "Appointment":
        return None
    code = appointment_event(previous, current)
    return Event(APPOINTMENT, current, code=code) if code is not None else None


def _data_subject_request(previous: dict[str, Any] | None, current: dict[str, Any]) -> Event | None:
    """AC-16: an open request received, or its due date moved (the answer is due by then)."""
    if current.get("resourceType") != "Task" or not is_dsr(current) or current.get("status") in FINAL_STATUSES:
        return None
    due = due_high(current)
    if due is None:
        return None
    if previous is not None and is_dsr(previous) and previous.get("status") not in FINAL_STATUSES \
            and due_high(previous) == due:
        return None
    return Event(DATA_SUBJECT_REQUEST, current, code="received" if previous is None else "due-date-changed")


_GIVEN = "active"
_REVOKED = frozenset({"inactive", "rejected", "entered-in-error"})


def _consent(previous: dict[str, Any] | None, current: dict[str, Any]) -> Event | None:
    if current.get("resourceType") != "Consent":
        return None
    before = previous.get("status") if previous is not None else None
    now = current.get("status")
    given = now == _GIVEN and before != _GIVEN
    revoked = now in _REVOKED and before == _GIVEN
    return Event(CONSENT, current) if given or revoked else None


#: the topics that writes trigger; CRITICAL_READING and NEHP_SUBMISSION are raised by the server's own
#: code (jobs/monitoring.py, operations/nehp_submit.py) through events.py
TRIGGERS: dict[str, Trigger] = {APPOINTMENT: _appointment, CONSENT: _consent,
                                DATA_SUBJECT_REQUEST: _data_subject_request}


# -- filters: the values a resource has for a topic's filter parameter --------------------------------
def _participants(resource: dict[str, Any], prefix: str) -> set[str]:
    return {str(p["actor"]["reference"]) for p in resource.get("participant", []) or []
            if isinstance((p.get("actor") or {}).get("reference"), str) and p["actor"]["reference"].startswith(prefix)}


def _ref(resource: dict[str, Any], field: str) -> set[str]:
    ref = (resource.get(field) or {}).get("reference")
    return {str(ref)} if isinstance(ref, str) else set()


FILTER_VALUES: dict[tuple[str, str], Callable[[dict[str, Any]], set[str]]] = {
    ("Appointment", "patient"): lambda r: _participants(r, "Patient/"),
    ("Appointment", "practitioner"): lambda r: _participants(r, "Practitioner/"),
    ("Appointment", "status"): lambda r: {str(r.get("status"))},
    ("DetectedIssue", "patient"): lambda r: _ref(r, "patient"),
    ("Consent", "patient"): lambda r: _ref(r, "patient"),
    ("Consent", "status"): lambda r: {str(r.get("status"))},
    ("Encounter", "patient"): lambda r: _ref(r, "subject"),
    ("Task", "patient"): lambda r: _ref(r, "for"),
    ("Task", "status"): lambda r: {str(r.get("status"))},
}


def no_values(resource: dict[str, Any]) -> set[str]:
    """The values of a filter a resource type does not have."""
    return set()


def filter_matches(resource: dict[str, Any], parameter: str, wanted: list[str]) -> bool:
    """A filter ``parameter=v1,v2`` matches when the resource has any of the values; a reference value
    may be given as ``Patient/123`` or ``123``."""
    values = FILTER_VALUES.get((str(resource.get("resourceType")), parameter), no_values)(resource)
    for want in wanted:
        for have in values:
            if have == want or have.rsplit("/", 1)[-1] == want:
                return True
    return False
