"""A delivery round may outlast the lease of its claim (a slow endpoint, a partition delivered in order):
the lease is renewed while the round runs, so a second node's worker never takes over and delivers the
same message again (issue 15 §5, jobs/leases.py); a message whose lease was lost is left to its new
holder."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from fhir_server.backends import AUDIT_RULES
from fhir_server.jobs.leases import LeaseKeeper
from fhir_server.jobs.worker import OutboxWorker, _now, _stamp
from fhir_server.storage.postgres.store import PostgresStore
from tests.pg import fresh_database, release_database

pytestmark = pytest.mark.req("TM-13")
TOPIC = "subscription"
LEASE = 1  # second: every round below takes several


class Slow:
    """A channel slower than the lease: four messages in order take about 2.4 s."""

    name = "slow"

    def __init__(self, log: list[str], seconds: float = 0.6) -> None:
        self.log = log
        self.seconds = seconds

    async def deliver(self, topic: str, key: str, payload: dict[str, Any]) -> None:
        self.log.append(key)
        await asyncio.sleep(self.seconds)


@pytest.fixture
def database() -> Iterator[str]:
    url = fresh_database("renew")
    yield url
    release_database(url)


@pytest.fixture
async def stores(database: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    a = PostgresStore(database, rules=AUDIT_RULES, pool_size=3, outbox_lease_seconds=LEASE)
    b = PostgresStore(database, rules=AUDIT_RULES, pool_size=3, outbox_lease_seconds=LEASE)
    await a.open()
    await b.open()
    try:
        yield a, b
    finally:
        await b.close()
        await a.close()


async def _queue(store: PostgresStore, partitions: int, each: int) -> list[str]:
    keys = [f"sub:s{p}:{n}" for p in range(partitions) for n in range(1, each + 1)]

    def unit(view: Any) -> None:
        for key in keys:
            view.enqueue(TOPIC, f"Subscription/{key.split(':')[1]}", key, b'{"kind": "event"}')

    await store.transaction(unit)
    return keys


async def _race(stores: tuple[PostgresStore, PostgresStore], keys: list[str], concurrency: int) -> list[str]:
    """Node A starts a slow round; node B polls all along, as a second node's worker does."""
    log: list[str] = []
    a, b = (OutboxWorker(s, {TOPIC: [Slow(log)]}, sync_audit=False, concurrency=concurrency, max_attempts=3)
            for s in stores)
    first = asyncio.create_task(a.run_once())
    for _ in range(60):  # about 3 s of node B's polling, past A's lease many times over
        await asyncio.sleep(0.05)
        await b.run_once()
        if first.done() and len(log) >= len(keys):
            break
    await first
    while len(log) < len(keys):  # whatever A gave up is B's
        await b.run_once()
    return log


@pytest.mark.parametrize("concurrency", [1, 16], ids=["in-order", "side-by-side"])
async def test_a_round_longer_than_the_lease_delivers_each_message_once(stores, concurrency):
    keys = await _queue(stores[0], partitions=1, each=4)
    log = await _race(stores, keys, concurrency)
    assert sorted(log) == sorted(keys)  # each once: A kept its lease for the whole round
    due = await stores[0].outbox_due(TOPIC, "2999-01-01T00:00:00.000000Z", 10)
    assert due == []  # and every one settled


async def test_a_lost_lease_leaves_the_message_to_its_new_holder(stores):
    a, b = stores
    await _queue(a, partitions=1, each=1)
    claimed = await a.outbox_due(TOPIC, _stamp(_now()), 10)
    assert len(claimed) == 1
    async with LeaseKeeper(a, claimed, lambda: _stamp(_now())) as lease:
        assert lease.holds(claimed)
        await asyncio.sleep(LEASE + 0.2)  # renewed meanwhile: B finds nothing due
        assert await b.outbox_due(TOPIC, _stamp(_now()), 10) == []
        assert lease.renewals >= 1 and lease.holds(claimed)
    await asyncio.sleep(LEASE + 0.2)  # no keeper any more: the lease runs out, B takes the message over
    taken = await b.outbox_due(TOPIC, _stamp(_now()), 10)
    assert [i.id for i in taken] == [claimed[0].id]
    stale = LeaseKeeper(a, claimed, lambda: _stamp(_now()))
    await stale.renew()  # A's old claim cannot be renewed: it is B's now
    assert not stale.holds(claimed)
