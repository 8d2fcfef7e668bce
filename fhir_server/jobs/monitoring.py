"""Remote monitoring (TM-25) and emergency alerting on critical values (TM-26).

Limits live where FHIR keeps them for a patient: the ``target`` of an active ``Goal`` (``measure`` = the
indicator's code, ``detailRange`` = the limits), typically attached to a remote-monitoring CarePlan.
Every stored Observation with a quantity is compared with the limits of its patient's Goals, inside the
same write unit. A value outside them records, in that unit:

- a ``DetectedIssue`` (severity high) implicating the Observation;
- a follow-up ``Task`` (priority stat) for the practitioner who set the goal, naming the measures the
  order lists: consultation, referral, hospitalisation, ambulance call, urgent care;
- the ``critical-reading`` topic event (subscriptions/events.py, the one event source), whose listeners
  queue an urgent ``Communication`` for every participant — the patient, the Goal's author and the
  members of the patient's active CareTeams (outbox topic ``notification-urgent``, never held for a
  digest; ``critical_notices``) — and match the subscriptions.

The limits of each patient are cached per process (``MonitoringAlerts``), so a reading costs no Goal
search. They are dropped whenever a Goal of theirs is written (its new subject and its previous one),
all of them when a Goal is deleted, and, on several processes sharing one PostgreSQL database, all of them
when another node's unit that wrote a Goal commits (the store's change feed, ``backends.watch_changes``:
a notification's delay, milliseconds on a near database — a reading written on this node in that moment
is judged by the previous limits). A unit that wrote a Goal of a patient judges that patient's readings by
the Goals as the unit sees them but does not cache them: a unit that rolls back leaves nothing behind.
Before a cached limit raises an alert, its Goal is read by id in the unit: deleted or at another version
(another node's write not heard of yet, ``$expunge``, which runs no hook), the patient's limits are read
again and the reading judged by them — no alert comes from limits the database no longer holds. (A reading
the cached limits pass is not re-checked: within the window above, a narrowed Goal on another node may miss
one.)
"""

from __future__ import annotations

import threading
import uuid
import weakref
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from fhir_server.backends import watch_changes
from fhir_server.i18n import Message, msg
from fhir_server.i18n.notices import payload
from fhir_server.interactions.base import Services
from fhir_server.interactions.write import store_version
from fhir_server.search.in_unit import find_in_unit
from fhir_server.security.session import URGENT_TOPIC
from fhir_server.storage.protocols import StoredResource, TxView
from fhir_server.subscriptions.events import emit
from fhir_server.subscriptions.topics import CRITICAL_READING, Event

_LIVE = ("final", "amended", "corrected", "preliminary")
MEASURES = "consultation, referral, hospitalisation, ambulance call or urgent care"


@dataclass(frozen=True, slots=True)
class Limit:
    system: str | None
    code: str
    low: Decimal | None
    high: Decimal | None
    goal: str
    author: str | None
    version: int = 0  # the Goal's version the limit was read from (0: unknown)


def _decimal(quantity: Any) -> Decimal | None:
    value = quantity.get("value") if isinstance(quantity, dict) else None
    return None if value is None or isinstance(value, bool) else Decimal(str(value))


def _limits(goal: dict[str, Any]) -> list[Limit]:
    out = []
    author = (goal.get("expressedBy") or {}).get("reference")
    version = str((goal.get("meta") or {}).get("versionId") or "0")
    for target in goal.get("target", []) or []:
        rng = target.get("detailRange")
        if not isinstance(rng, dict):
            continue
        for coding in (target.get("measure") or {}).get("coding", []) or []:
            if coding.get("code"):
                out.append(Limit(coding.get("system"), coding["code"], _decimal(rng.get("low")),
                                 _decimal(rng.get("high")), f"Goal/{goal['id']}", author,
                                 int(version) if version.isdigit() else 0))
    return out


def _patient(resource: dict[str, Any], field: str) -> str | None:
    ref = (resource.get(field) or {}).get("reference")
    return ref.split("/", 1)[1] if isinstance(ref, str) and ref.startswith("Patient/") else None


_EVERY = "*"  # in a unit's touched set: it deleted a Goal, whose patient is not at hand
MAX_CACHED_PATIENTS = 100_000


class MonitoringAlerts:
    """The change hook (and, for Goal deletions, a unit hook of the executor); one per server: its cache of
    limits is per process, kept true as the module docstring says."""

    def __init__(self) -> None:
        self._limits: dict[str, tuple[Limit, ...]] = {}
        self._lock = threading.Lock()
        # the patients whose Goals a unit has written (or _EVERY): not cached from inside that unit
        self._touched: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
        self._watching: set[int] = set()  # the stores whose other nodes' Goal writes clear the cache

    def clear(self) -> None:
        """Drop every patient's limits (any thread: another node's Goal write, a Goal deleted here)."""
        with self._lock:
            self._limits.clear()

    def _drop(self, patients: set[str]) -> None:
        with self._lock:
            if _EVERY in patients:
                self._limits.clear()
            for patient in patients:
                self._limits.pop(patient, None)

    def _watch(self, store: Any) -> None:
        """Hear of the Goal writes of other processes on the same database (PostgreSQL: every node; a
        SQLite file has one process). Registered at this hook's first call, before anything is cached, and
        before the unit that writes this process's first Goal ends, so that its commit tells the others."""
        if id(store) not in self._watching:
            self._watching.add(id(store))
            watch_changes(store, {"Goal"}, self.clear)

    def _touch(self, view: TxView, patients: set[str]) -> None:
        """A Goal of ``patients`` is written in this unit: their limits are stale now and once it commits."""
        self._touched.setdefault(view, set()).update(patients)
        self._drop(patients)
        view.on_commit(lambda: self._drop(patients))

    # -- the executor's unit hook: Goals deleted (deletions run no change hook) ----------------------------
    def unit_begin(self, view: TxView, req: Any, ops: list[Any]) -> None:
        return None  # nothing to prepare: the executor calls both ends of every unit hook

    def unit_end(self, view: TxView, req: Any, ops: list[Any]) -> None:
        if any(op.resource_type == "Goal" and op.deleted for op in ops):
            self._touch(view, {_EVERY})

    def __call__(self, view: TxView, services: Services, previous: bytes | None, resource: dict[str, Any],
                 stored: StoredResource) -> None:
        self._watch(services.store)
        rtype = resource.get("resourceType")
        if rtype == "Goal":
            before = orjson.loads(previous) if previous else {}
            patients = {p for p in (_patient(resource, "subject"), _patient(before, "subject")) if p is not None}
            self._touch(view, patients)
            return
        if rtype != "Observation" or resource.get("status") not in _LIVE:
            return
        value, patient = _decimal(resource.get("valueQuantity")), _patient(resource, "subject")
        if value is None or patient is None:
            return
        limits, cached = self._matching(view, patient, resource)
        broken = _broken(limits, value)
        if broken is not None and cached and not _still_stored(view, broken):
            # the cached limits are not the Goal as stored now (deleted or changed by a path or a node this
            # process has not heard of yet, $expunge): judged again by the Goals as the unit sees them
            self._drop({patient})
            broken = _broken(self._matching(view, patient, resource)[0], value)
        if broken is not None:
            self._alert(view, services, resource, patient, value, broken)  # one alert, for the first limit broken

    def _matching(self, view: TxView, patient: str, observation: dict[str, Any]) -> tuple[list[Limit], bool]:
        """The limits of ``patient`` on the reading's code, and whether they came from the cache."""
        limits = self._limits.get(patient)
        cached = limits is not None
        if limits is None:
            limits = tuple(lim for goal in find_in_unit(view, "Goal", [("patient", f"Patient/{patient}"),
                                                                ("lifecycle-status", "active")])
                           for lim in _limits(goal))
            touched = self._touched.get(view)
            if touched is None or not (patient in touched or _EVERY in touched):
                with self._lock:
                    if len(self._limits) >= MAX_CACHED_PATIENTS:
                        self._limits.clear()
                    self._limits[patient] = limits
        codes = {(c.get("system"), c.get("code")) for c in (observation.get("code") or {}).get("coding", []) or []}
        return [lim for lim in limits if (lim.system, lim.code) in codes or (None, lim.code) in codes
                or (lim.system is None and any(code == lim.code for _, code in codes))], cached

    def _alert(self, view: TxView, services: Services, observation: dict[str, Any], patient: str, value: Decimal,
               limit: Limit) -> None:
        obs_ref = f"Observation/{observation['id']}"
        what = (observation.get("code") or {}).get("text") or limit.code
        unit = (observation.get("valueQuantity") or {}).get("unit", "")
        low = "-" if limit.low is None else limit.low
        high = "-" if limit.high is None else limit.high
        notice_text = msg("notice.critical_value", what=what, value=value, unit=unit, low=low, high=high,
                          goal=limit.goal)
        text = str(notice_text)  # the DetectedIssue and the Task are clinical records: English, as before
        issue_id, task_id = str(uuid.uuid4()), str(uuid.uuid4())
        issue = _issue(patient, obs_ref, text, view.timestamp)
        stored = store_version(view, services, issue, "DetectedIssue", issue_id, 1, "POST")
        store_version(view, services, _task(patient, obs_ref, issue_id, text, limit, view.timestamp), "Task",
                      task_id, 1, "POST")
        detail = {"patient": patient, "observation": observation["id"], "recipients": _participants(view, patient,
                                                                                                     limit),
                  "about": [obs_ref, f"DetectedIssue/{issue_id}", f"Task/{task_id}"], "message": notice_text}
        emit(view, services, Event(CRITICAL_READING, orjson.loads(stored.data or b"{}"), (obs_ref,),
                                   code="critical", detail=detail), stored)


def _broken(limits: list[Limit], value: Decimal) -> Limit | None:
    """The first limit ``value`` is outside of."""
    return next((lim for lim in limits if (lim.low is not None and value < lim.low)
                 or (lim.high is not None and value > lim.high)), None)


def _still_stored(view: TxView, limit: Limit) -> bool:
    """Is the Goal a cached limit was read from still stored, at that version (one read by id, in the unit)?"""
    stored = view.current("Goal", limit.goal.split("/", 1)[1])
    return stored is not None and not stored.deleted and stored.version == limit.version


def critical_notices(view: TxView, event: Event) -> None:
    """The urgent notices of a critical reading to every participant (TM-26), from its topic event; the text
    in every notice language (i18n/notices.py)."""
    detail = event.detail or {}
    for recipient in detail.get("recipients", []):
        notice = _notice(detail["patient"], recipient, detail["about"], detail["message"])
        view.enqueue(URGENT_TOPIC, recipient, f"alert:{detail['observation']}:{recipient}", orjson.dumps(notice))


def _issue(patient: str, obs_ref: str, text: str, when: str) -> dict[str, Any]:
    return {"resourceType": "DetectedIssue", "status": "final", "severity": "high",
            "code": {"text": "critical value of a monitored indicator"},
            "patient": {"reference": f"Patient/{patient}"}, "identifiedDateTime": when,
            "implicated": [{"reference": obs_ref}], "detail": text}


def _task(patient: str, obs_ref: str, issue_id: str, text: str, limit: Limit, when: str) -> dict[str, Any]:
    task: dict[str, Any] = {
        "resourceType": "Task", "status": "requested", "intent": "order", "priority": "stat",
        "code": {"text": "follow-up of a critical value (TM-26)"},
        "description": f"{text}. Decide the follow-up: {MEASURES}.",
        "for": {"reference": f"Patient/{patient}"}, "focus": {"reference": obs_ref},
        "reasonReference": {"reference": f"DetectedIssue/{issue_id}"}, "authoredOn": when}
    if limit.author:
        task["owner"] = {"reference": limit.author}
    return task


def _notice(patient: str, recipient: str, about: list[str], text: Message) -> dict[str, Any]:
    return {"resourceType": "Communication", "id": str(uuid.uuid4()), "status": "preparation",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/communication-category",
                                      "code": "alert"}]}],
            "priority": "stat", "subject": {"reference": f"Patient/{patient}"},
            "recipient": [{"reference": recipient}], "about": [{"reference": ref} for ref in about],
            "payload": payload(text)}


def _participants(view: TxView, patient: str, limit: Limit) -> list[str]:
    """Everyone in the patient's personal medical support: the patient, the goal's author, the members
    of the patient's active care teams (TM-26 "all participants")."""
    people = {f"Patient/{patient}"}
    if limit.author:
        people.add(limit.author)
    for team in find_in_unit(view, "CareTeam", [("patient", f"Patient/{patient}"), ("status", "active")]):
        for member in team.get("participant", []) or []:
            ref = (member.get("member") or {}).get("reference")
            if isinstance(ref, str) and ref.startswith(("Practitioner/", "PractitionerRole/", "RelatedPerson/")):
                people.add(ref)
    return sorted(people)
