"""The subscriptions the server is serving, in memory, with their durable state.

Each Subscription has a job record (kind ``subscription``, id ``subscription:[id]``) written in the
units that create it and that number its events: the owner's identity (ownership.py), the base URL
of the request that created it (notifications name resources by full URL), and
``eventsSinceSubscriptionStart``. The registry is loaded from those records and the stored
Subscriptions at start-up, and changed only by callbacks of committed units, so it never shows a
subscription, a status or an event number that was rolled back.

Event numbers are assigned inside the write unit that triggers them (they travel in the outbox
message), from the job record in the database (``next_event``), never from this process's memory:
several server processes may share one PostgreSQL database. The registry's ``events`` is what this
process last saw committed; ``$status`` and ``$events`` read the record itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson

from fhir_server.storage.protocols import Store, TxView
from fhir_server.subscriptions.candidates import TopicIndex
from fhir_server.subscriptions.ownership import Owner
from fhir_server.subscriptions.spec import SubscriptionSpec

JOB_KIND = "subscription"
JOB_STATUS = "state"


def job_id(subscription_id: str) -> str:
    return f"subscription:{subscription_id}"


def stored_events(view: TxView, subscription_id: str, default: int = 0) -> int:
    """``eventsSinceSubscriptionStart`` as the database holds it in this unit (``default``: no record)."""
    data = view.job(job_id(subscription_id))
    return int(orjson.loads(data).get("events") or 0) if data else default


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
        self._gone: dict[str, int] = {}  # deleted Subscriptions: the version of the deletion
        self._lock = threading.Lock()
        self.on_change: Callable[[], None] | None = None  # wakes the delivery worker (thread-safe)
        self.last_sent: dict[str, float] = {}  # monotonic time of the last delivery (heartbeats)
        self._classic_types: frozenset[str] = frozenset()  # types some classic subscription searches
        self._served: dict[str, TopicIndex] = {}  # topic -> the entries matched on write (candidates.py)

    def get(self, subscription_id: str) -> Entry | None:
        return self._entries.get(subscription_id)

    def all(self) -> list[Entry]:
        with self._lock:
            return list(self._entries.values())

    def for_topic(self, topic: str) -> tuple[Entry, ...]:
        """The served (active or error) subscriptions of a topic."""
        index = self._served.get(topic)
        return index.entries if index is not None else ()

    def candidates(self, topic: str, focus: dict[str, Any]) -> list[Entry]:
        """The served subscriptions of a topic that may match an event on ``focus``, by the index of their
        filters kept on every change (candidates.py): the write path does not try every subscription."""
        index = self._served.get(topic)
        return index.candidates(focus) if index is not None else []

    def classic_for(self, resource_type: str) -> list[Entry]:
        """The served classic (search-criteria) subscriptions on a resource type."""
        if resource_type not in self._classic_types:
            return []
        return [e for e in self.all() if e.spec.classic is not None and e.spec.classic[0] == resource_type
                and e.status in ("active", "error")]

    def watches(self, resource_type: str) -> bool:
        return resource_type in self._classic_types

    def _reindex(self) -> None:  # under the lock
        self._classic_types = frozenset(e.spec.classic[0] for e in self._entries.values() if e.spec.classic)
        served: dict[str, list[Entry]] = {}
        for e in self._entries.values():
            if e.spec.classic is None and e.status in ("active", "error"):
                served.setdefault(e.spec.topic, []).append(e)
        self._served = {topic: TopicIndex.build(tuple(entries)) for topic, entries in served.items()}

    def __bool__(self) -> bool:
        return bool(self._entries)

    # -- changes, applied when a unit commits (here or on another node: ``load``, ``fetch``) -------------
    def put(self, entry: Entry) -> None:
        """Serve ``entry`` unless the registry already reflects a newer version (a reload that read the
        store before this process's own commit must not undo it) or the Subscription was deleted since."""
        with self._lock:
            if entry.version and entry.version <= self._gone.get(entry.id, 0):
                return
            known = self._entries.get(entry.id)
            if known is not None and entry.version < known.version:
                return
            events = max(entry.events, known.events if known else 0)
            self._entries[entry.id] = replace(entry, events=events)
            self._reindex()

    def remove(self, subscription_id: str, version: int = 0) -> None:
        """Stop serving a Subscription (``version``: of its deletion, so a stale reload cannot bring it back)."""
        with self._lock:
            self._entries.pop(subscription_id, None)
            if version:
                self._gone[subscription_id] = max(version, self._gone.get(subscription_id, 0))
            self._reindex()

    def set_status(self, subscription_id: str, status: str, version: int) -> None:
        with self._lock:
            known = self._entries.get(subscription_id)
            if known is not None and version >= known.version:
                self._entries[subscription_id] = replace(known, status=status, version=version)
                self._reindex()

    def wake(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # -- inside a write unit ----------------------------------------------------------------------------
    def next_event(self, view: TxView, entry: Entry) -> int:
        """The next event number of a subscription, taken from its job record **in the database**, inside
        the write unit: units are serialized on every backend, so the read and the write of the count are
        one step, and two server processes on one database never hand out the same number (nor the same
        outbox key, which the second would silently drop). The registry learns it once the unit commits."""
        data = view.job(job_id(entry.id))
        state = orjson.loads(data) if data else orjson.loads(entry.state())
        number = int(state.get("events") or 0) + 1
        state["events"] = number
        view.put_job(job_id(entry.id), JOB_KIND, JOB_STATUS, orjson.dumps(state))
        view.on_commit(lambda: self._committed(entry.id, number))
        return number

    def _committed(self, subscription_id: str, number: int) -> None:
        with self._lock:
            known = self._entries.get(subscription_id)
            if known is not None and number > known.events:
                self._entries[subscription_id] = replace(known, events=number)

    # -- from the store: at start-up, and when another node changed a Subscription ------------------------
    async def load(self, store: Store, parse: Callable[[dict[str, Any]], SubscriptionSpec]) -> None:
        """Serve what the database holds: every Subscription with a job record, as stored now; stop
        serving those deleted or without a record any more. Run at start-up and whenever another node
        wrote a Subscription (service.py, the store's change feed), so a Subscription created, changed,
        switched off or deleted on one node takes effect on every node without a restart."""
        found = {jid.split(":", 1)[1]: data for jid, data in await store.list_jobs(JOB_KIND, JOB_STATUS)}
        for sid, data in found.items():
            await self._refresh(store, parse, sid, data)
        for entry in self.all():
            if entry.id not in found and await store.get_job(job_id(entry.id)) is None:
                stored = await store.read("Subscription", entry.id)
                self.remove(entry.id, stored.version if stored is not None else 0)

    async def fetch(self, store: Store, parse: Callable[[dict[str, Any]], SubscriptionSpec],
                    subscription_id: str) -> Entry | None:
        """One Subscription as the database holds it now (a delivery of one this process has not heard
        of yet: created on another node a moment ago)."""
        job = await store.get_job(job_id(subscription_id))
        if job is None:
            return self.get(subscription_id)
        await self._refresh(store, parse, subscription_id, job[3])
        return self.get(subscription_id)

    async def _refresh(self, store: Store, parse: Callable[[dict[str, Any]], SubscriptionSpec], sid: str,
                       data: bytes) -> None:
        stored = await store.read("Subscription", sid)
        if stored is None or stored.deleted or stored.data is None:
            self.remove(sid, stored.version if stored is not None else 0)
            return
        known = self.get(sid)
        state = orjson.loads(data)
        events = int(state.get("events") or 0)
        if known is not None and known.version == stored.version:
            self._committed(sid, events)
            return
        resource = orjson.loads(stored.data)
        try:
            spec = parse(resource)
        except Exception:  # a Subscription this version no longer supports: not served
            self.remove(sid)
            return
        self.put(Entry(sid, spec, str(resource.get("status")), Owner.load(state.get("owner") or {}),
                       str(state.get("base_url") or ""), events, stored.version))
