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
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from fhir_server.jobs.channels import Channel, DeliveryError, RejectedError
from fhir_server.jobs.delivery_audit import delivery_event
from fhir_server.jobs.leases import LeaseKeeper
from fhir_server.security.audit.read_notices import expand
from fhir_server.storage.protocols import OutboxItem, Store, TxView

log = logging.getLogger(__name__)
#: how a delivered or failed group is settled: (outbox ids, status, error, retry at, audit events)
_Outcome = tuple[list[int], str, str | None, str | None, list[dict[str, Any]]]
FMT = "%Y-%m-%dT%H:%M:%S.%fZ"


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
        self._wake = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="kzfhir-outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # a broken round must not stop delivery for good
                log.exception("outbox round failed")
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
            async with LeaseKeeper(self.store, due, lambda: _stamp(self.clock())) as lease:
                groups = self._groups(topic, due)
                if self.concurrency > 1:
                    done += await self._deliver_side_by_side(topic, groups, channels, lease)
                    continue
                for group in groups:
                    if lease.holds(group):
                        await self._deliver(topic, group, channels)
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

    async def _deliver(self, topic: str, group: list[OutboxItem], channels: list[Channel]) -> None:
        outcome = await self._attempt(topic, group, channels)
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
