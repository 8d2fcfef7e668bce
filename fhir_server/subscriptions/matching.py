"""Subscriptions in the write path (issue 15 §1, §3, §4): one object, three moments of a write unit.

* ``unit_begin`` (executor, before anything is written): a Subscription being written is checked
  (spec.py: 422 for what is not supported), gets the server's status (``requested`` until the
  handshake succeeds; a client may only switch it ``off``) and its owner (ownership.py).
* ``on_event`` (a listener of the one event source, events.py: the topic events of the unit's writes
  and the server's own events, such as a critical reading) and ``__call__`` (a change hook: versions a
  classic criteria subscription may match): noted.
* ``unit_end`` (executor, after every write of the unit was judged): the notes are matched against the
  subscriptions' filters (classic criteria: by the search engine); each match whose focus the
  **owner** may read — the same decision function as every request (security/session.py ``decide``),
  over the facts as written in this unit — gets the next event number and an outbox message, in this
  same unit: it commits with the change or not at all, and the outbox worker delivers it with retries
  (jobs/worker.py). A focus the owner may not read is not an event for that subscription: nothing is
  queued and no number is taken. Subscriptions written in the unit get their job record (owner, base
  URL) and, for a rest-hook topic subscription, a handshake message.
"""

from __future__ import annotations

import weakref
from functools import partial
from typing import Any

import orjson

from fhir_server.errors import FhirError
from fhir_server.interactions.plan import WriteOp, prefixed
from fhir_server.search.parse import parse_search
from fhir_server.security.policy import Action
from fhir_server.security.policy.owned import owner_key, owner_of
from fhir_server.security.session import decide, patients_of
from fhir_server.security.tx_facts import TxFacts
from fhir_server.storage.protocols import StoredResource, TxView
from fhir_server.subscriptions.ownership import Owner, with_owner
from fhir_server.subscriptions.registry import JOB_KIND, JOB_STATUS, Entry, Registry, job_id
from fhir_server.subscriptions.spec import read_spec, unprocessable
from fhir_server.subscriptions.topics import Event, filter_matches

OUTBOX_TOPIC = "subscription"
_Change = tuple[dict[str, Any], StoredResource]
_Noted = tuple[Event, StoredResource]


def partition(subscription_id: str) -> str:
    return f"Subscription/{subscription_id}"


def versioned(stored: StoredResource) -> str:
    return f"{stored.type}/{stored.id}/_history/{stored.version}"


class SubscriptionHooks:
    """Installed in ``Services.change_hooks``; the executor also calls ``unit_begin`` / ``unit_end``."""

    def __init__(self, registry: Registry, services: Any) -> None:
        self.registry = registry
        self.services = services
        self.owner: Any = None  # the Subscriptions service (service.py)
        self._changes: weakref.WeakKeyDictionary[Any, list[_Change]] = weakref.WeakKeyDictionary()
        self._events: weakref.WeakKeyDictionary[Any, list[_Noted]] = weakref.WeakKeyDictionary()

    # -- the event listener and the change hook ------------------------------------------------------------
    def on_event(self, view: TxView, services: Any, event: Event, stored: StoredResource) -> None:
        if self.registry:
            self._events.setdefault(view, []).append((event, stored))

    def __call__(self, view: TxView, services: Any, previous: bytes | None, resource: dict[str, Any],
                 stored: StoredResource) -> None:
        if self.registry and self.registry.watches(str(resource.get("resourceType"))):
            self._changes.setdefault(view, []).append((resource, stored))

    def flush(self, view: TxView) -> None:
        """Match what was noted now: for events raised in a unit the executor does not run."""
        changes, events = self._changes.pop(view, []), self._events.pop(view, [])
        if changes or events:
            self._match(view, events, changes)

    # -- before the writes -------------------------------------------------------------------------------
    def unit_begin(self, view: TxView, req: Any, ops: list[WriteOp]) -> None:
        for op in ops:
            if op.resource_type != "Subscription" or op.resource is None:
                continue
            try:
                op.resource = self._prepared(view, req, op)
            except FhirError as exc:
                raise prefixed(exc, op) from exc

    def _prepared(self, view: TxView, req: Any, op: WriteOp) -> dict[str, Any]:
        resource = op.resource or {}
        if op.criteria is not None and op.method != "POST":
            raise unprocessable("a Subscription is updated by its id, not by conditional criteria", "Subscription",
                                code="not-supported")
        spec = read_spec(resource)
        target = op.target or op.resource_id
        current = view.current("Subscription", target) if target else None
        previous = orjson.loads(current.data) if current is not None and not current.deleted and current.data else None
        key = (owner_of(previous) if previous is not None else None) or owner_key(req.access.ctx)
        wanted = resource.get("status")
        if wanted == "off":
            status = "off"
        elif previous is not None and previous.get("status") in ("active", "error") and \
                _same_channel(previous, spec):
            status = str(previous["status"])
        elif spec.channel == "websocket" or spec.classic is not None:
            # no handshake to wait for: a websocket client gets its handshake when it binds
            # (websocket.py); a classic R4 subscription is active once the server accepted it
            status = "active"
        else:
            status = "requested"  # activated by a successful handshake (delivery.py)
        out = {k: v for k, v in resource.items() if not (k == "error" and status != "error")}
        return with_owner({**out, "status": status}, key)

    # -- after the writes -----------------------------------------------------------------------------------
    def unit_end(self, view: TxView, req: Any, ops: list[WriteOp]) -> None:
        for op in ops:
            if op.resource_type != "Subscription":
                continue
            if op.deleted:
                for gone in op.deleted:
                    view.delete_job(job_id(gone.id))
                    view.on_commit(partial(self.registry.remove, gone.id, gone.version))
            elif op.stored is not None and op.outcome in ("created", "updated"):
                self._subscription_written(view, req, op.stored)
        self.flush(view)

    def _subscription_written(self, view: TxView, req: Any, stored: StoredResource) -> None:
        resource = orjson.loads(stored.data or b"{}")
        spec = read_spec(resource)
        # the record in the database, not this process's registry: another node may have created the
        # Subscription or numbered its events since (several processes on one PostgreSQL database)
        data = view.job(job_id(stored.id))
        state = orjson.loads(data) if data else {}
        owner = Owner.load(state["owner"]) if state.get("owner") else Owner.of(req.access.ctx)
        base_url = str(state.get("base_url") or req.base_url)
        entry = Entry(stored.id, spec, str(resource.get("status")), owner, base_url, int(state.get("events") or 0),
                      stored.version)
        view.put_job(job_id(stored.id), JOB_KIND, JOB_STATUS, entry.state())
        view.on_commit(lambda: self.registry.put(entry))  # before the worker is woken for its handshake
        if entry.status == "requested":
            message = {"kind": "handshake", "subscription": stored.id, "version": stored.version}
            view.enqueue(OUTBOX_TOPIC, partition(stored.id), f"sub:{stored.id}:handshake:{stored.version}",
                         orjson.dumps(message))
            view.on_commit(self.registry.wake)

    def _match(self, view: TxView, events: list[_Noted], changes: list[_Change]) -> None:
        policy = self.services.enforcer.policy if self.services.enforcer is not None else None
        facts = TxFacts(view)
        queued = False
        for event, stored in events:
            resource = event.focus
            for entry in self.registry.candidates(event.topic, resource):
                if not _filters_match(entry, resource):
                    continue
                judged = decide(policy, entry.owner.context(), facts, Action.READ, resource,
                                patients_of(stored, resource))
                if not judged.allowed:
                    continue  # hidden from the owner: not an event of this subscription (docs/subscriptions.md)
                self._enqueue(view, entry, event, stored)
                queued = True
        queued = self._match_classic(view, changes, policy, facts) or queued
        if queued:
            view.on_commit(self.registry.wake)

    def _match_classic(self, view: TxView, changes: list[_Change], policy: Any, facts: TxFacts) -> bool:
        """Classic R4 criteria (R4 subscription.html: applied to the new value of the resource): the
        search engine itself decides, over the unit's index rows, whether the changed resource is one of
        the criteria's matches (the search with ``_id`` added, as conditional writes search in the unit)."""
        last: dict[tuple[str, str], tuple[dict[str, Any], StoredResource]] = {}
        for resource, stored in changes:
            if self.registry.watches(stored.type):
                last[(stored.type, stored.id)] = (resource, stored)
        queued = False
        for (rtype, rid), (resource, stored) in last.items():
            for entry in self.registry.classic_for(rtype):
                assert entry.spec.classic is not None
                try:
                    query = parse_search(rtype, [*entry.spec.classic[1], ("_id", rid)], strict=True)
                except FhirError:
                    continue  # checked at create; a criteria this version no longer parses must not fail the write
                if not view.search_ids(query, 1):
                    continue
                judged = decide(policy, entry.owner.context(), facts, Action.READ, resource,
                                patients_of(stored, resource))
                if judged.allowed:
                    self._enqueue(view, entry, Event("", resource), stored)
                    queued = True
        return queued

    def _enqueue(self, view: TxView, entry: Entry, event: Event, stored: StoredResource) -> None:
        number = self.registry.next_event(view, entry)
        context = []
        for ref in event.context:
            rtype, _, rid = ref.partition("/")
            found = view.current(rtype, rid)
            if found is not None and not found.deleted:
                context.append(versioned(found))
        message = {"kind": "event", "subscription": entry.id, "topic": event.topic, "event": number,
                   "timestamp": view.timestamp, "focus": versioned(stored), "context": context}
        view.enqueue(OUTBOX_TOPIC, partition(entry.id), f"sub:{entry.id}:{number}", orjson.dumps(message))


def _same_channel(previous: dict[str, Any], spec: Any) -> bool:
    try:
        return bool(read_spec(previous).channel_key() == spec.channel_key())
    except FhirError:
        return False


def _filters_match(entry: Entry, resource: dict[str, Any]) -> bool:
    rtype = resource.get("resourceType")
    return all(filter_matches(resource, name, list(values))
               for ftype, name, values in entry.spec.filters if ftype == rtype)
