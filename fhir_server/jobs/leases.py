"""Keeping the claim of a delivery round's messages while the round runs (issue 15 §5: "exactly once per
event" on every node of a multi-node deployment).

On PostgreSQL a claim of due outbox messages is a lease (storage/postgres/store.py ``outbox_due``): once it
runs out, another node's worker may claim the message and deliver it too. A round can outlast the lease —
a slow endpoint and its timeout, a hundred messages of one partition in order, the settle unit queued
behind the writers — so the lease is **renewed** every third of its length while the round runs, and a
message whose lease was lost (not renewed: taken over, or the renewal failed until the lease ran out by
this process's clock) is **not delivered** by this round: whoever holds it now delivers it.

A store without leases (SQLite: one process per file, storage/sqlite/lock.py) has nothing to renew.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from fhir_server.storage.protocols import OutboxItem

log = logging.getLogger(__name__)
#: a group is not started with less than this share of the lease left (its delivery would outlive it)
MARGIN = 1 / 3


class LeaseKeeper:
    """``async with LeaseKeeper(store, claimed, now) as lease:`` deliver a group only ``if lease.holds(group)``.

    ``lock``: held around each renewal; whoever settles the same messages holds it around the settle unit,
    so a renewal and a settle of one worker never update the same rows at once (on PostgreSQL the two
    would lock them in different orders: a deadlock, the renewal lost). ``standing``: the keeper of a
    worker whose claims come and go (jobs/worker.py ``_Stream``): messages are ``add``-ed when claimed and
    ``release``-d when settled, and it keeps running while it holds none."""

    def __init__(self, store: Any, claimed: list[OutboxItem], now: Callable[[], str], *,
                 lock: asyncio.Lock | None = None, standing: bool = False) -> None:
        self._renew = getattr(store, "outbox_renew", None)
        seconds = getattr(store, "outbox_lease_seconds", None)
        self.seconds = float(seconds) if self._renew is not None and seconds else 0.0
        self._now = now  # the worker's clock, as the outbox speaks it
        self._held: dict[int, OutboxItem] = {}
        self._until: dict[int, float] = {}  # by this process's clock, from the claim or the last renewal
        self.lock = lock
        self.standing = standing
        self._task: asyncio.Task[None] | None = None
        self.renewals = 0
        self.add(claimed)

    async def __aenter__(self) -> LeaseKeeper:
        if self.seconds and (self._held or self.standing):
            self._task = asyncio.create_task(self._keep(), name="kzfhir-outbox-lease")
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def add(self, claimed: list[OutboxItem]) -> None:
        """Messages just claimed: held for a lease from now."""
        until = time.monotonic() + self.seconds
        for item in claimed:
            self._held[item.id] = item
            self._until[item.id] = until

    def release(self, ids: set[int]) -> None:
        """Messages settled (or left to another holder): no longer renewed."""
        for i in ids:
            self._held.pop(i, None)
            self._until.pop(i, None)

    def holds(self, group: list[OutboxItem]) -> bool:
        """Is every message of ``group`` still this worker's, with enough of the lease left to start it?"""
        if not self.seconds:
            return True
        latest = time.monotonic() + self.seconds * MARGIN  # renewals failed: the lease may run out during it
        return all(item.id in self._held and latest <= self._until[item.id] for item in group)

    async def _keep(self) -> None:
        while self._held or self.standing:
            await asyncio.sleep(self.seconds / 3)
            if self._held:
                await self.renew()

    async def renew(self) -> None:
        assert self._renew is not None
        asked = time.monotonic()
        items = list(self._held.values())
        try:
            async with self.lock if self.lock is not None else contextlib.nullcontext():
                renewed: list[OutboxItem] = await self._renew(items, self._now())
        except Exception:  # the database unreachable: keep trying while the lease lasts
            log.warning("outbox lease renewal failed", exc_info=True)
            return
        kept = {item.id for item in renewed}
        lost = {item.id for item in items} - kept
        if lost:  # settled meanwhile (a retry moved its time), or taken over after the lease ran out
            log.debug("outbox lease: %d messages no longer held", len(lost))
            self.release(lost)
        for item in renewed:
            if item.id in self._held:  # not released while the renewal ran
                self._held[item.id] = item
                self._until[item.id] = asked + self.seconds
        self.renewals += 1
