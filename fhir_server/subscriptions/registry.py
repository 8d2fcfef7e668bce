"""The subscriptions the server is serving, in memory, with their durable state.

Each Subscription has a job record (kind ``subscription``, id ``subscription:[id]``) written in the
units that create it and that number its events: the owner's identity (ownership.py), the base URL
of the request that created it (notifications name resources by full URL), and
``eventsSinceSubscriptionStart``. The registry is loaded from those records and the stored
Subscriptions at start-up, and changed only by callbacks of committed units, so it never shows a
subscription, a status or an event number that was rolled back.

Event numbers are assigned inside the write unit that triggers them (they travel in the outbox
message). A number is taken when the unit matches; should that unit still roll back after matching
(only a failed COMMIT can do that), the number is skipped: a client then finds nothing for it in
``$events``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson

from fhir_server.storage.protocols import Store, TxView
from fhir_server.subscriptions.ownership import Owner
from fhir_server.subscriptions.spec import SubscriptionSpec

JOB_KIND = "subscription"
JOB_STATUS = "state"


def job_id(subscription_id: str) -> str:
    return f"subscription:{subscription_id}"


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    spec: SubscriptionSpec
    status: str  # requested | active | error | off
    owner: Owner
    base_url: str
    events: int = 0  # eventsSinceSubscriptionStart, as committed
    version: int = 0  # the Subscription version this entry reflects

    def state(self) -> bytes:
        return orjson.dumps({"owner": self.owner.dump(), "base_url": self.base_url, "events": self.events})


class Registry:
    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._assigned: dict[str, int] = {}  # numbers handed out in units not yet committed
        self._lock = threading.Lock()
        self.on_change: Callable[[], None] | None = None  # wakes the delivery worker (thread-safe)
        self.last_sent: dict[str, float] = {}  # monotonic time of the last delivery (heartbeats)
        self._classic_types: frozenset[str] = frozenset()  # types some classic subscription searches

    def get(self, subscription_id: str) -> Entry | None:
        return self._entries.get(subscription_id)

    def all(self) -> list[Entry]:
        with self._lock:
            return list(self._entries.values())

    def for_topic(self, topic: str) -> list[Entry]:
        return [e for e in self.all() if e.spec.topic == topic and e.status in ("active", "error")]

    def classic_for(self, resource_type: str) -> list[Entry]:
        """The served classic (search-criteria) subscriptions on a resource type."""
        if resource_type not in self._classic_types:
            return []
        return [e for e in self.all() if e.spec.classic is not None and e.spec.classic[0] == resource_type
                and e.status in ("active", "error")]

    def watches(self, resource_type: str) -> bool:
        return resource_type in self._classic_types

    def _retype(self) -> None:  # under the lock
        self._classic_types = frozenset(e.spec.classic[0] for e in self._entries.values() if e.spec.classic)

    def __bool__(self) -> bool:
        return bool(self._entries)

    # -- changes, applied when the unit commits -------------------------------------------------------
    def put(self, entry: Entry) -> None:
        with self._lock:
            known = self._entries.get(entry.id)
            events = max(entry.events, known.events if known else 0)
            self._entries[entry.id] = replace(entry, events=events)
            self._retype()

    def remove(self, subscription_id: str) -> None:
        with self._lock:
            self._entries.pop(subscription_id, None)
            self._assigned.pop(subscription_id, None)
            self._retype()

    def set_status(self, subscription_id: str, status: str, version: int) -> None:
        with self._lock:
            known = self._entries.get(subscription_id)
            if known is not None:
                self._entries[subscription_id] = replace(known, status=status, version=version)

    def wake(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # -- inside a write unit ----------------------------------------------------------------------------
    def next_event(self, view: TxView, entry: Entry) -> int:
        """The next event number of a subscription, recorded with the unit (job record) and applied
        to the registry once it commits."""
        with self._lock:
            known = self._entries.get(entry.id, entry)
            number = max(known.events, self._assigned.get(entry.id, 0)) + 1
            self._assigned[entry.id] = number
        view.put_job(job_id(entry.id), JOB_KIND, JOB_STATUS, replace(known, events=number).state())
        view.on_commit(lambda: self._committed(entry.id, number))
        return number

    def _committed(self, subscription_id: str, number: int) -> None:
        with self._lock:
            known = self._entries.get(subscription_id)
            if known is not None and number > known.events:
                self._entries[subscription_id] = replace(known, events=number)

    # -- start-up -----------------------------------------------------------------------------------------
    async def load(self, store: Store, parse: Callable[[dict[str, Any]], SubscriptionSpec]) -> None:
        for jid, data in await store.list_jobs(JOB_KIND, JOB_STATUS):
            sid = jid.split(":", 1)[1]
            stored = await store.read("Subscription", sid)
            if stored is None or stored.deleted or stored.data is None:
                continue
            resource = orjson.loads(stored.data)
            state = orjson.loads(data)
            try:
                spec = parse(resource)
            except Exception:  # a Subscription this version no longer supports: not served
                continue
            self.put(Entry(sid, spec, str(resource.get("status")), Owner.load(state.get("owner") or {}),
                           str(state.get("base_url") or ""), int(state.get("events") or 0), stored.version))
