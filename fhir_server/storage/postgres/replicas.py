"""Read replicas of the PostgreSQL store (issue 11 §3): reads by id, vread, search and history of a client's
request may be served by a hot standby, never at the price of a client not seeing its own writes, and never
for what decides access.

* **Which reads.** Only those of a ``GET``/``HEAD`` request (api/operator.py sets the request's
  :class:`Route`), and only the store's ``read``, ``vread``, ``search``, ``history`` and ``include``. Write
  units, conditional matching (``search_ids``), jobs, the outbox and the audit trail always run on the
  primary, and so do the access policy's facts (Consents, care relationships, blocks, a patient's IINs):
  they are loaded through :class:`PrimaryReads` (security/setup.py). The change counter that invalidates
  access caches on every node (changes.py) is read from the primary alongside every replica read, so a
  revoked Consent still stops the very next read on every node, whatever the replica has replayed.
* **Read-your-writes.** Every write unit ends by writing its instant into ``store_head.last_micros``
  (store.py), and that row replicates with the unit. A request that wrote tells its client the instant of
  its last unit — a cookie (:data:`COOKIE`) and, for the client's bearer token, in this process's memory —
  and a later read of that client is served by a replica only when the replica's ``store_head`` has
  reached that instant: the check is part of the replica query itself (no extra round trip); when the
  replica is behind, the primary serves the read.
* **Health.** A monitor asks every replica, each :data:`CHECK_SECONDS`, how far its ``store_head`` is
  behind the primary's: a replica that does not answer, is no standby any more, or is more than
  ``replica_max_lag_seconds`` behind serves nothing until it is back. A replica that fails a read is taken
  out at once and the read is served by the primary instead: a lost replica never costs a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import math
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from fhir_server.storage.postgres.conn import is_unavailable, reason_of, safe_name

log = logging.getLogger(__name__)

#: the cookie carrying the instant (``store_head.last_micros``) of a client's last write unit
COOKIE = "kzfhir_rw"
#: how often the monitor measures every replica
CHECK_SECONDS = 1.0
#: how long a read waits for a replica's pooled connection before the primary serves it
REPLICA_WAIT_SECONDS = 1.0
_TOKENS_KEPT = 100_000
_MEASURE = "SELECT pg_is_in_recovery(), (SELECT last_micros FROM store_head WHERE id = 1)"


@dataclass(slots=True)
class Route:
    """Where the reads of one HTTP request may go. ``replicas``: a replica may serve them (a GET or HEAD);
    ``after``: the instant of the client's last write unit known (0: none), which a replica must have
    replayed; ``written``: the instant of this request's own last write unit (0: it wrote nothing)."""

    replicas: bool = False
    after: int = 0
    written: int = 0
    token: str | None = None
    entered: Token[Route | None] | None = None

    def wrote(self, micros: int) -> None:
        self.written = max(self.written, micros)
        self.after = max(self.after, micros)


#: the request's route (api/operator.py); None — background work, tools, tests — reads from the primary
ROUTE: ContextVar[Route | None] = ContextVar("kzfhir_read_route", default=None)


@contextlib.contextmanager
def on_primary() -> Iterator[None]:
    """Reads inside this block are served by the primary, whatever the request's route says."""
    token = ROUTE.set(None)
    try:
        yield
    finally:
        ROUTE.reset(token)


class PrimaryReads:
    """The store as the access policy must read it: every read on the primary. Everything that is not a
    read passes through unchanged."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def read(self, resource_type: str, resource_id: str) -> Any:
        with on_primary():
            return await self._store.read(resource_type, resource_id)

    async def vread(self, resource_type: str, resource_id: str, version: int) -> Any:
        with on_primary():
            return await self._store.vread(resource_type, resource_id, version)

    async def search(self, query: Any) -> Any:
        with on_primary():
            return await self._store.search(query)

    async def history(self, query: Any) -> Any:
        with on_primary():
            return await self._store.history(query)

    async def include(self, specs: Any, sources: Any, limit: int) -> Any:
        with on_primary():
            return await self._store.include(specs, sources, limit)


class ReadYourWrites:
    """The instants of clients' last writes, by cookie and by bearer token (this process's memory), for as
    long as a replica within the lag limit may still lack them (``ttl_seconds``)."""

    def __init__(self, ttl_seconds: int) -> None:
        self.ttl = ttl_seconds
        self._by_token: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._lock = threading.Lock()

    def enter(self, method: str, headers: list[tuple[bytes, bytes]]) -> Route:
        """Start a request's route (api/operator.py): its reads see it until :meth:`leave`."""
        route = self.begin(method, headers)
        route.entered = ROUTE.set(route)
        return route

    def leave(self, route: Route) -> None:
        if route.entered is not None:
            ROUTE.reset(route.entered)
            route.entered = None

    def begin(self, method: str, headers: list[tuple[bytes, bytes]]) -> Route:
        """The route of a request: replicas for GET and HEAD, after the client's last write known."""
        after, token = 0, None
        for key, value in headers:
            if key == b"cookie":
                after = max(after, _cookie_value(value))
            elif key == b"authorization":
                token = hashlib.sha256(value).hexdigest()[:32]
        if token is not None:
            with self._lock:
                known = self._by_token.get(token)
            if known is not None and known[1] > time.monotonic():
                after = max(after, known[0])
        return Route(replicas=method in ("GET", "HEAD"), after=after, token=token)

    def finish(self, route: Route) -> list[tuple[bytes, bytes]]:
        """The response headers of a request that wrote (its cookie); remembers its token's instant."""
        if not route.written:
            return []
        if route.token is not None:
            with self._lock:
                self._by_token[route.token] = (route.written, time.monotonic() + self.ttl)
                self._by_token.move_to_end(route.token)
                while len(self._by_token) > _TOKENS_KEPT:
                    self._by_token.popitem(last=False)
        cookie = f"{COOKIE}={route.written}; Path=/; Max-Age={self.ttl}; HttpOnly; SameSite=Lax"
        return [(b"set-cookie", cookie.encode())]


def _cookie_value(header: bytes) -> int:
    for part in header.split(b";"):
        name, _, value = part.strip().partition(b"=")
        if name == COOKIE.encode() and value.isdigit() and len(value) <= 20:
            return int(value)
    return 0


@dataclass(eq=False)
class Replica:
    """One hot standby: its pools and what the monitor last found."""

    url: str
    name: str
    pool: ConnectionPool[psycopg.Connection[Any]]
    apool: AsyncConnectionPool[psycopg.AsyncConnection[Any]]
    up: bool = False
    last_micros: int = 0
    lag_seconds: float = math.inf
    problem: str = "not checked yet"
    served: int = 0


@dataclass
class Stats:
    """Reads by who served them, and why a read meant for a replica went to the primary."""

    primary: int = 0
    fallbacks: Counter[str] = field(default_factory=Counter)


class ReplicaSet:
    """The replicas of a store; see the module docstring."""

    def __init__(self, urls: list[str], kwargs: dict[str, Any], pool_size: int, max_lag_seconds: float) -> None:
        self.max_lag = max_lag_seconds
        self.replicas = [
            Replica(url, safe_name(url),
                    ConnectionPool(url, min_size=1, max_size=pool_size, kwargs=kwargs, open=False,
                                   name=f"kzfhir-replica-{n}", timeout=REPLICA_WAIT_SECONDS, reconnect_timeout=5.0),
                    AsyncConnectionPool(url, min_size=1, max_size=pool_size, kwargs=kwargs, open=False,
                                        name=f"kzfhir-replica-async-{n}", timeout=REPLICA_WAIT_SECONDS,
                                        reconnect_timeout=5.0))
            for n, url in enumerate(urls)]
        self.stats = Stats()
        self.read_your_writes = ReadYourWrites(math.ceil(max_lag_seconds + 2 * CHECK_SECONDS) + 60)
        self._turn = itertools.count()
        self._monitor: asyncio.Task[None] | None = None
        self._lock = threading.Lock()

    async def open(self, primary_head: Callable[[], Awaitable[int]]) -> None:
        """Open the pools without waiting (a replica that is down does not hold the server's start) and start
        the monitor; ``primary_head`` reads the primary's ``store_head.last_micros``."""
        loop = asyncio.get_running_loop()
        for replica in self.replicas:
            await loop.run_in_executor(None, lambda r=replica: r.pool.open(wait=False))  # type: ignore[misc]
            await replica.apool.open(wait=False)
        await self.check(primary_head)
        self._monitor = loop.create_task(self._watch(primary_head), name="kzfhir-pg-replicas")

    async def close(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
            self._monitor = None
        loop = asyncio.get_running_loop()
        for replica in self.replicas:
            await replica.apool.close()
            await loop.run_in_executor(None, replica.pool.close)

    # -- choosing ----------------------------------------------------------------------------------
    def pick(self) -> Replica | None:
        """A replica fit to serve reads now (in turn among those that are), or None."""
        usable = [r for r in self.replicas if r.up and r.lag_seconds <= self.max_lag]
        if not usable:
            if self.replicas:
                self.fell_back("none usable")
            return None
        return usable[next(self._turn) % len(usable)]

    def served_by(self, replica: Replica | None) -> None:
        with self._lock:
            if replica is None:
                self.stats.primary += 1
            else:
                replica.served += 1

    def fell_back(self, reason: str) -> None:
        with self._lock:
            self.stats.fallbacks[reason] += 1

    def failed(self, replica: Replica, exc: BaseException) -> None:
        """A read on ``replica`` failed: out until the monitor finds it answering again."""
        replica.up = False
        replica.problem = reason_of(exc)
        self.fell_back("replica failed")
        log.warning("replica %s failed a read (%s): reads go to the primary", replica.name, replica.problem)

    # -- the monitor -------------------------------------------------------------------------------
    async def _watch(self, primary_head: Callable[[], Awaitable[int]]) -> None:
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            try:
                await self.check(primary_head)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the primary out of reach: replicas' lag unknown, keep the last figures
                log.debug("replica check: %s", exc)

    async def check(self, primary_head: Callable[[], Awaitable[int]]) -> None:
        """Measure every replica against the primary's newest write unit."""
        try:
            head: int | None = await primary_head()
        except Exception:  # the primary out of reach: measure the replicas' state, not their lag
            head = None
        await asyncio.gather(*(self._check_one(r, head) for r in self.replicas))

    async def _check_one(self, replica: Replica, head: int | None) -> None:
        try:
            async with replica.apool.connection() as conn:
                cur = await conn.execute(_MEASURE)
                row = await cur.fetchone()
        except psycopg.Error as exc:
            replica.up, replica.problem = False, reason_of(exc)
            return
        assert row is not None
        in_recovery, last = bool(row[0]), int(row[1] or 0)
        replica.last_micros = max(replica.last_micros, last)
        if head is not None:
            # behind: its data may lack everything written since its newest unit (an upper bound)
            replica.lag_seconds = 0.0 if last >= head else max(0.0, time.time() - last / 1_000_000)
        # a replica that is no standby any more (promoted) serves nothing: it may be a primary of its own
        replica.up = in_recovery
        replica.problem = "" if in_recovery else "not in recovery (promoted? it is a primary now)"

    def figures(self) -> dict[str, Any]:
        """For /metrics and /ready."""
        with self._lock:
            return {"primary": self.stats.primary, "fallbacks": sorted(self.stats.fallbacks.items()),
                    "replicas": [{"name": r.name, "up": r.up, "lag": r.lag_seconds, "served": r.served,
                                  "problem": r.problem} for r in self.replicas]}


def unusable(exc: BaseException) -> bool:
    """Does a replica's failure call for the primary to serve the read? The replica out of reach, or a
    query cancelled by a conflict with recovery (a hot standby replaying what the query reads: 40001)."""
    return is_unavailable(exc) or isinstance(exc, psycopg.errors.SerializationFailure)
