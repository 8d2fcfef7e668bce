"""Subscriptions as the application runs them: installed into the services (api/app.py
``build_services``), started in the lifespan after the store opened, stopped before it closes.

Start-up publishes the topics (readable as ``Basic/kz-topic-*``), loads the registry, starts the
delivery worker for outbox topic ``subscription`` (jobs/worker.py with the rest-hook and websocket
channel, delivery.py) and the heartbeat loop; it holds the websocket connections and binding tokens
(websocket.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

import orjson

from fhir_server.backends import watch_changes
from fhir_server.interactions.write import store_version
from fhir_server.jobs.appointment_notices import notify_participants
from fhir_server.jobs.monitoring import critical_notices
from fhir_server.jobs.worker import OutboxWorker
from fhir_server.storage.protocols import StoredResource, TxView
from fhir_server.subscriptions.delivery import SubscriptionChannel
from fhir_server.subscriptions.events import EventSource
from fhir_server.subscriptions.matching import OUTBOX_TOPIC, SubscriptionHooks, partition
from fhir_server.subscriptions.registry import Registry
from fhir_server.subscriptions.spec import read_spec
from fhir_server.subscriptions.topics import APPOINTMENT, CRITICAL_READING, Event, topic_resources
from fhir_server.subscriptions.websocket import BindingTokens, Sockets

log = logging.getLogger(__name__)
HEARTBEAT_TICK = 1.0  # seconds between heartbeat checks
#: concurrency: subscriptions are delivered side by side, one in-order stream per Subscription, and a
#: round settled in one unit (jobs/worker.py; the TM-26 alert latency, docs/subscriptions.md Bench)
WORKER_OPTIONS: dict[str, Any] = {"poll_seconds": 0.5, "base_backoff": 2.0, "max_attempts": 10, "concurrency": 16}


class Subscriptions:
    def __init__(self, services: Any) -> None:
        self.services = services
        self.registry = Registry()
        self.hooks = SubscriptionHooks(self.registry, services)
        self.hooks.owner = self
        self.sockets = Sockets()  # websocket connections by subscription (websocket.py)
        self.tokens = BindingTokens()
        self.channel = SubscriptionChannel(services, self.registry, self.sockets)
        self.worker: OutboxWorker | None = None
        self.heartbeat_tick = HEARTBEAT_TICK
        self._heartbeats: asyncio.Task[None] | None = None
        self._reload: asyncio.Task[None] | None = None  # the registry reloading after another node's change
        self._reload_again = False
        self._stopped = True

    async def start(self, **worker_options: Any) -> None:
        await publish_topics(self.services)
        await self.registry.load(self.services.store, read_spec)
        self._watch_other_nodes()
        await self.start_worker(**worker_options)
        self._heartbeats = asyncio.create_task(self._heartbeat_loop(), name="kzfhir-subscription-heartbeats")

    async def start_worker(self, **options: Any) -> OutboxWorker:
        """(Re)start the delivery worker; tests pass fast ``poll_seconds`` / ``base_backoff``."""
        if self.worker is not None:
            await self.worker.stop()
        worker = OutboxWorker(self.services.store, {OUTBOX_TOPIC: [self.channel]}, sync_audit=False,
                              **{**WORKER_OPTIONS, **options})
        loop = asyncio.get_running_loop()

        def wake() -> None:  # from the writer thread, after a commit
            with contextlib.suppress(RuntimeError):  # the loop is closing: the next poll finds the message
                loop.call_soon_threadsafe(worker.wake)

        self.registry.on_change = wake
        worker.start()
        self.worker = worker
        return worker

    def _watch_other_nodes(self) -> None:
        """A Subscription created, changed, switched off or deleted on another node (several processes on
        one PostgreSQL database) takes effect here without a restart: the store's change feed
        (backends.py ``watch_changes``) tells of every committed write of a Subscription, and the
        registry is reloaded from the database. The callback may run on a reader's thread: it only
        schedules the reload on this loop; reloads asked for while one runs are coalesced into one more."""
        loop = asyncio.get_running_loop()
        self._stopped = False

        def changed() -> None:  # any thread
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(self._reload_soon)

        watch_changes(self.services.store, {"Subscription"}, changed)

    def _reload_soon(self) -> None:
        if self._stopped:
            return
        if self._reload is not None and not self._reload.done():
            self._reload_again = True
            return
        self._reload = asyncio.create_task(self._reload_loop(), name="kzfhir-subscription-reload")

    async def _reload_loop(self) -> None:
        while True:
            self._reload_again = False
            try:
                await self.registry.load(self.services.store, read_spec)
            except Exception:  # a failed reload must not end reloads for good: the next change retries
                log.exception("subscription registry reload failed")
            if not self._reload_again or self._stopped:
                return

    async def stop(self) -> None:
        self._stopped = True
        if self._reload is not None:
            self._reload.cancel()
            await asyncio.gather(self._reload, return_exceptions=True)
            self._reload = None
        if self._heartbeats is not None:
            self._heartbeats.cancel()
            await asyncio.gather(self._heartbeats, return_exceptions=True)
            self._heartbeats = None
        if self.worker is not None:
            await self.worker.stop()
            self.worker = None
        await self.channel.close()
        self.registry.on_change = None

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_tick)
            with contextlib.suppress(Exception):  # a failed round must not end heartbeats for good
                await self.heartbeats_due()

    async def heartbeats_due(self) -> int:
        """Queue a heartbeat for every active subscription silent for its heartbeat period."""
        now = time.monotonic()
        due = []
        for entry in self.registry.all():
            if not entry.spec.heartbeat or entry.status != "active" or entry.spec.classic is not None:
                continue
            if entry.spec.channel == "websocket" and not self.sockets.bound(entry.id):
                continue  # nobody listening: a heartbeat for no one is not queued
            last = self.registry.last_sent.setdefault(entry.id, now)
            if now - last >= entry.spec.heartbeat:
                due.append(entry)
        if not due:
            return 0

        def unit(view: TxView) -> None:
            for entry in due:
                message = {"kind": "heartbeat", "subscription": entry.id}
                view.enqueue(OUTBOX_TOPIC, partition(entry.id), f"sub:{entry.id}:heartbeat:{uuid.uuid4()}",
                             orjson.dumps(message))

        await self.services.store.transaction(unit)
        for entry in due:
            self.registry.last_sent[entry.id] = now
        self.registry.wake()
        return len(due)


def _appointment_notices(view: TxView, services: Any, event: Event, stored: StoredResource) -> None:
    if event.topic == APPOINTMENT and event.code is not None:  # TM-09
        notify_participants(view, event.focus, stored, event.code)


def _critical_notices(view: TxView, services: Any, event: Event, stored: StoredResource) -> None:
    if event.topic == CRITICAL_READING:  # TM-26
        critical_notices(view, event)


def install(services: Any) -> Subscriptions:
    """The one event source (events.py) with its listeners — the patient notices, then the subscriptions —
    and the subscriptions' own hooks (status and owner of a written Subscription, classic criteria)."""
    subscriptions = Subscriptions(services)
    source = EventSource([_appointment_notices, _critical_notices, subscriptions.hooks.on_event])
    source.flushers.append(subscriptions.hooks.flush)
    services.change_hooks.append(source)
    services.change_hooks.append(subscriptions.hooks)
    return subscriptions


def installed(services: Any) -> Subscriptions | None:
    for hook in services.change_hooks:
        if isinstance(hook, SubscriptionHooks):
            owner: Subscriptions = hook.owner
            return owner
    return None


async def publish_topics(services: Any) -> int:
    """Write the topics as Basic resources when missing or changed (as definitions/publish.py does)."""
    items = topic_resources()

    def unit(view: TxView) -> int:
        written = 0
        for resource in items:
            current = view.current("Basic", resource["id"])
            if current is not None and not current.deleted and current.data is not None:
                stored = {k: v for k, v in orjson.loads(current.data).items() if k != "meta"}
                if stored == {k: v for k, v in resource.items() if k != "meta"} | {"resourceType": "Basic"}:
                    continue
            version = 1 if current is None else current.version + 1
            store_version(view, services, dict(resource), "Basic", resource["id"], version, "PUT")
            written += 1
        return written

    count: int = await services.store.transaction(unit)
    return count
