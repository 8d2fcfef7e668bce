"""The outbox worker: claims due messages, delivers them through their topic's channel, and records
the outcome (delivered, retry with exponential backoff, or dead after ``max_attempts``).

Notifications are delivered as per-patient digests when a digest period is configured (AC-18:
"digest frequency configurable"): a patient's pending messages wait until the oldest is that old,
then go out together in one message. Urgent notices (break-glass, AC-02) are never held back.

Each delivery, and each message given up as dead, is audited in the unit that settles the outbox
rows (TM-13: a delivery is a transfer of health information; see jobs/delivery_audit.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from fhir_server.errors import FhirError
from fhir_server.jobs.channels import Channel, DeliveryError, RejectedError
from fhir_server.jobs.delivery_audit import delivery_event
from fhir_server.jobs.leases import LeaseKeeper
from fhir_server.security.audit.read_notices import expand
from fhir_server.storage.protocols import OutboxItem, Store, TxView

log = logging.getLogger(__name__)
#: While the store is out of reach a failing round is one warning line at most this often, not a
#: traceback every poll (issue 12 §3: a clean log; the store answers 503 to requests meanwhile).
UNAVAILABLE_LOG_SECONDS = 30.0
_quiet_until = 0.0


def _log_failure(what: str) -> None:
    """Log the exception being handled: a store that is out of reach briefly, anything else in full."""
    global _quiet_until
    exc = sys.exc_info()[1]
    if isinstance(exc, FhirError) and exc.category == "unavailable":
        now = time.monotonic()
        if now >= _quiet_until:
            _quiet_until = now + UNAVAILABLE_LOG_SECONDS
            log.warning("%s: the store is out of reach (%s); retrying", what, exc)
        return
    log.exception(what)
#: how a delivered or failed group is settled: (outbox ids, status, error, retry at, audit events)
_Outcome = tuple[list[int], str, str | None, str | None, list[dict[str, Any]]]
FMT = "%Y-%m-%dT%H:%M:%S.%fZ"
STOP_SETTLE_SECONDS = 10.0  # the streaming worker's last settle unit at stop


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime(FMT)


class OutboxWorker:
    def __init__(self, store: Store, channels: dict[str, list[Channel]], *, digest_seconds: int = 0,
                 max_attempts: int = 10, base_backoff: float = 2.0, poll_seconds: float = 0.5,
                 batch: int = 100, digest_topics: frozenset[str] = frozenset({"notification"}),
                 clock: Callable[[], datetime] = _now, sync_audit: bool = True, concurrency: int = 1) -> None:
        self.store = store
        # >1: the partitions of a round are delivered side by side (each partition's messages still in
        # order) and the round's outcomes settled in one write unit (subscriptions, TM-26 latency)
        self.concurrency = concurrency
        self.sync_audit = sync_audit  # False for topics that carry no read notices (subscriptions)
        self.channels = channels
        self.digest = timedelta(seconds=digest_seconds)
        self.max_attempts = max_attempts
        self.base_backoff = base_backoff
        self.poll_seconds = poll_seconds
        self.batch = batch
        self.digest_topics = digest_topics
        self.clock = clock
        self._task: asyncio.Task[None] | None = None
        self._stream: _Stream | None = None
        self._wake = asyncio.Event()

    def start(self) -> None:
        if self.concurrency > 1:
            self._stream = _Stream(self)
            self._task = asyncio.create_task(self._stream.run(), name="kzfhir-outbox")
        else:
            self._task = asyncio.create_task(self._loop(), name="kzfhir-outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # a broken round must not stop delivery for good
                _log_failure("outbox round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            self._wake.clear()

    async def run_once(self) -> int:
        """One delivery round over every topic with channels; returns messages settled."""
        done = 0
        if self.sync_audit:
            await self.store.audit.sync()  # notices of reads are queued when the reads are chained
        for topic, channels in self.channels.items():
            due = await self.store.outbox_due(topic, _stamp(self.clock()), self.batch)
            # the claim is a lease on PostgreSQL: kept while the round runs, a group whose lease was lost
            # is left to the worker that holds it now (jobs/leases.py: no double delivery across nodes)
            async with LeaseKeeper(self.store, due, lambda: _stamp(self.clock()), lock=asyncio.Lock()) as lease:
                groups = self._groups(topic, due)
                if self.concurrency > 1:
                    done += await self._deliver_side_by_side(topic, groups, channels, lease)
                    continue
                for group in groups:
                    if lease.holds(group):
                        await self._deliver(topic, group, channels, lease.lock)
                        done += len(group)
        return done

    async def _deliver_side_by_side(self, topic: str, groups: list[list[OutboxItem]],
                                    channels: list[Channel], lease: LeaseKeeper) -> int:
        """Deliver up to ``concurrency`` partitions at once, each partition's groups in order, then
        settle every outcome in one unit: a unit per message would queue behind the writers for each
        (under ingest load that wait was most of the alert latency, docs/subscriptions.md Bench)."""
        by_partition: dict[str | None, list[list[OutboxItem]]] = {}
        for group in groups:
            by_partition.setdefault(group[0].partition, []).append(group)
        outcomes: list[_Outcome] = []
        gate = asyncio.Semaphore(self.concurrency)

        async def partition(queued: list[list[OutboxItem]]) -> None:
            async with gate:
                for group in queued:
                    if not lease.holds(group):
                        return  # the rest of this partition stays in order for its new holder
                    outcomes.append(await self._attempt(topic, group, channels))

        await asyncio.gather(*(partition(queued) for queued in by_partition.values()))
        if outcomes:
            async with lease.lock or contextlib.nullcontext():
                await self.store.transaction(lambda v: _settle_all(v, outcomes))
        return sum(len(outcome[0]) for outcome in outcomes)

    def _groups(self, topic: str, due: list[OutboxItem]) -> list[list[OutboxItem]]:
        if not self.digest or topic not in self.digest_topics:
            return [[item] for item in due]
        by_partition: dict[str | None, list[OutboxItem]] = {}
        for item in due:
            by_partition.setdefault(item.partition, []).append(item)
        cutoff = _stamp(self.clock() - self.digest)
        return [items for items in by_partition.values() if items[0].created <= cutoff]

    async def _deliver(self, topic: str, group: list[OutboxItem], channels: list[Channel],
                       lock: asyncio.Lock | None = None) -> None:
        outcome = await self._attempt(topic, group, channels)
        async with lock or contextlib.nullcontext():
            await self.store.transaction(lambda v: _settle(v, *outcome))

    async def _attempt(self, topic: str, group: list[OutboxItem], channels: list[Channel]) -> _Outcome:
        """Deliver one group through every channel; how to settle it (not yet settled)."""
        payloads = [await expand(self.store, orjson.loads(i.payload)) for i in group]
        # a message may itself list several uses (the reads chained together, read_notices.py): one list
        items = [line for p in payloads for line in (p.get("items", []) if p.get("digest") else [p])]
        payload: dict[str, Any] = payloads[0] if len(group) == 1 else {
            "digest": True, "partition": group[0].partition, "count": len(items), "items": items}
        key = group[0].key if len(group) == 1 else f"digest:{group[0].key}:{group[-1].key}"
        ids = [i.id for i in group]
        ack: str | None = None
        try:
            for channel in channels:
                ack = await channel.deliver(topic, key, payload) or ack
        except DeliveryError as exc:
            return self._failed(topic, key, group, channels, exc)
        except Exception as exc:  # a channel bug must back off like a refusal, not spin every poll
            log.exception("outbox %s: channel failed unexpectedly", key)
            return self._failed(topic, key, group, channels, DeliveryError(f"{exc.__class__.__name__}: {exc}"))
        event = delivery_event(topic, key, group[0].partition, _described(channels), len(group), acknowledgement=ack)
        return (ids, "delivered", None, None, [event])

    def _failed(self, topic: str, key: str, group: list[OutboxItem], channels: list[Channel],
                exc: DeliveryError) -> _Outcome:
        ids = [i.id for i in group]
        attempts = max(i.attempts for i in group) + 1
        if attempts >= self.max_attempts or isinstance(exc, RejectedError):
            log.warning("outbox %s: dead after %d attempts: %s", key, attempts, exc)
            event = delivery_event(topic, key, group[0].partition, _described(channels), len(group),
                                   delivered=False, error=str(exc) if isinstance(exc, RejectedError)
                                   else f"gave up after {attempts} attempts")
            return (ids, "dead", str(exc), None, [event])
        retry_at = _stamp(self.clock() + timedelta(seconds=self.base_backoff * 2 ** (attempts - 1)))
        return (ids, "retry", str(exc), retry_at, [])


class _Stream:
    """The worker's loop when partitions are delivered side by side (``concurrency`` > 1): a message is
    delivered as soon as it is claimed, not after the round before it was settled.

    Rounds (``run_once``) deliver a claim, then settle it in one unit, then claim again: a message queued
    meanwhile waits for the whole round, the settle unit included, which under ingest load queues
    behind the writers — that wait was most of the TM-26 alert latency left (docs/subscriptions.md,
    Bench). Here each wake-up (a commit that queued a message, or the poll) claims what is due and hands
    each group to its partition's **lane**, a task that delivers its partition's groups one after the
    other (the order of a partition is kept; at most ``concurrency`` deliveries at once); outcomes are
    settled by one **settler** task, in one unit for all that finished while the previous unit ran.

    A message is **in flight** from its claim until its outcome is settled (or its lease lost): it is
    not claimed again meanwhile (SQLite has no claim of its own; on PostgreSQL the lease keeps it), and
    at most ``4 · batch`` are in flight. One lease keeper renews every message in flight until it is
    settled (jobs/leases.py; never while a settle unit runs), and a group is delivered only while its
    lease is held. Delivery stays at least once: a message delivered but not settled when the process
    stops is delivered again later, with its key.
    """

    def __init__(self, worker: OutboxWorker) -> None:
        self.worker = worker
        self.inflight: set[int] = set()
        self._db = asyncio.Lock()  # a renewal and a settle of the same rows never run at once
        self.lease = LeaseKeeper(worker.store, [], lambda: _stamp(worker.clock()), lock=self._db, standing=True)
        self._lanes: dict[tuple[str, str | None], list[list[OutboxItem]]] = {}
        self._lane_tasks: dict[tuple[str, str | None], asyncio.Task[None]] = {}
        self._outcomes: list[_Outcome] = []
        self._settle = asyncio.Event()
        self._gate = asyncio.Semaphore(worker.concurrency)
        self._settler: asyncio.Task[None] | None = None
        self._full = False  # a claim found no room: the settler wakes the loop when there is

    async def run(self) -> None:
        worker = self.worker
        await self.lease.__aenter__()
        self._settler = asyncio.create_task(self._settle_loop(), name="kzfhir-outbox-settle")
        while True:
            try:
                await self.claim()
            except Exception:  # a failed claim must not stop delivery for good
                _log_failure("outbox claim failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(worker._wake.wait(), worker.poll_seconds)
            worker._wake.clear()

    async def claim(self) -> None:
        worker = self.worker
        if worker.sync_audit:
            await worker.store.audit.sync()
        for topic, channels in worker.channels.items():
            room = worker.batch * 4 - len(self.inflight)
            if room <= 0:
                self._full = True
                return
            # in flight before the query: a message settled while the query runs may still be in its
            # answer as pending (read before the settle committed), and must not be delivered again
            skip = set(self.inflight)
            due = await worker.store.outbox_due(topic, _stamp(worker.clock()), min(worker.batch, room) + len(skip))
            fresh = [item for item in due if item.id not in skip and item.id not in self.inflight]
            groups = worker._groups(topic, fresh)  # digests not due yet stay pending
            claimed = [item for group in groups for item in group]
            self.lease.add(claimed)
            self.inflight.update(item.id for item in claimed)
            for group in groups:
                self._queue(topic, channels, group)

    def _queue(self, topic: str, channels: list[Channel], group: list[OutboxItem]) -> None:
        lane = (topic, group[0].partition)
        self._lanes.setdefault(lane, []).append(group)
        task = self._lane_tasks.get(lane)
        if task is None or task.done():
            self._lane_tasks[lane] = asyncio.create_task(self._drain(lane, channels), name="kzfhir-outbox-lane")

    async def _drain(self, lane: tuple[str, str | None], channels: list[Channel]) -> None:
        queued = self._lanes[lane]  # _queue appends to this list while the lane runs
        while queued:
            group = queued.pop(0)
            if not self.lease.holds(group):  # lost: the rest of the lane too, to keep the order for its holder
                for left in [group, *queued]:
                    self._forget(left)
                queued.clear()
                break
            try:
                async with self._gate:
                    outcome = await self.worker._attempt(lane[0], group, channels)
            except Exception:  # _attempt turns channel errors into outcomes: this is a bug elsewhere
                log.exception("outbox %s: delivery failed unexpectedly", group[0].key)
                self._forget(group)  # still pending: claimed again later
                continue
            self._outcomes.append(outcome)
            self._settle.set()
        del self._lanes[lane], self._lane_tasks[lane]  # no await since the last look: nothing was queued

    def _forget(self, group: list[OutboxItem]) -> None:
        """A group not delivered here: no longer in flight, not settled."""
        ids = {item.id for item in group}
        self.inflight.difference_update(ids)
        self.lease.release(ids)

    async def _settle_loop(self) -> None:
        while True:
            await self._settle.wait()
            self._settle.clear()
            await self._settle_pending()

    async def _settle_pending(self) -> None:
        taken, self._outcomes = self._outcomes, []
        if not taken:
            return
        try:
            async with self._db:
                await self.worker.store.transaction(lambda v: _settle_all(v, taken))
        except Exception:  # not settled: delivered again later (at least once, with the same key)
            _log_failure("outbox settle failed")
        settled = {i for outcome in taken for i in outcome[0]}
        self.inflight.difference_update(settled)
        self.lease.release(settled)
        if self._full:
            self._full = False
            self.worker.wake()  # room in flight again

    async def stop(self) -> None:
        tasks = [*self._lane_tasks.values(), *([self._settler] if self._settler is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # what was delivered is settled while the store still can; bounded, so that a store already
        # closing (a unit queued after its writer stopped is never run) cannot hold the shutdown
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._settle_pending(), STOP_SETTLE_SECONDS)
        await self.lease.__aexit__(None, None, None)
        self._lanes.clear()
        self._lane_tasks.clear()
        self.inflight.clear()


def _described(channels: list[Channel]) -> list[tuple[str, str | None]]:
    return [(channel.name, getattr(channel, "endpoint", None)) for channel in channels]


def _settle_all(view: TxView, outcomes: list[_Outcome]) -> None:
    for outcome in outcomes:
        _settle(view, *outcome)


def _settle(view: TxView, ids: list[int], status: str, error: str | None, retry_at: str | None,
            events: list[dict[str, Any]]) -> None:
    view.settle_outbox(ids, status, error, retry_at)
    if events:
        view.audit.append_events(events)
