"""The PostgreSQL store: resources, history, search indexes, outbox, jobs and the audit trail in one
PostgreSQL 15+ database, reached with psycopg 3 through connection pools (issue 11 §2).

Write units (``Store.transaction``) are synchronous functions (storage/protocols.py): each runs on a
worker thread with a connection of the synchronous pool, inside one transaction that first takes the
one row of ``store_head`` ``FOR UPDATE``. That lock makes units serializable across threads, processes
and nodes — exactly the single writer's guarantee the interactions are written against: a conditional
create has one winner, If-Match one winner, version numbers and history seqs never collide, and the
audit chain has one order (every unit that writes appends to it, so units would queue on the chain's
head anyway). The row also carries the last unit's instant, so ``meta.lastUpdated`` is unique and
increasing across nodes whatever their clocks say. Reads never take it. A relaxed unit (read audit)
commits with ``synchronous_commit = off``.

Reads by id run on the event loop through the asynchronous pool; search, history, include and the audit
queries run the SQLite backend's shared query code (storage/sqlite/search with ``POSTGRES`` dialect) on
worker threads, in one REPEATABLE READ snapshot where they read more than one statement.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from fhir_server.storage.audit import ChainRules
from fhir_server.storage.postgres.audit import PgAuditLog
from fhir_server.storage.postgres.changes import CHANNEL, ChangeFeed
from fhir_server.storage.postgres.conn import (
    DatabaseUnavailable,
    QmarkConnection,
    connect_kwargs,
    is_unavailable,
    reason_of,
)
from fhir_server.storage.postgres.read_audit import CHAIN_SECONDS, STAGE_SQL, WAITING_SQL
from fhir_server.storage.postgres.read_batch import BATCH_SQL, ReadBatcher, Row
from fhir_server.storage.postgres.replicas import ROUTE, PrimaryReads, Replica, ReplicaSet, unusable
from fhir_server.storage.postgres.schema import SCHEMA_VERSION, create_schema
from fhir_server.storage.postgres.txview import PgTxView
from fhir_server.storage.protocols import HistoryPage, HistoryQuery, OutboxItem, StoredResource
from fhir_server.storage.sqlite import outbox
from fhir_server.storage.sqlite.history import query_history
from fhir_server.storage.sqlite.search.dialect import POSTGRES
from fhir_server.storage.sqlite.search.executor import _run as run_planned_search
from fhir_server.storage.sqlite.search.executor import match_ids
from fhir_server.storage.sqlite.search.includes import include_round

T = TypeVar("T")
log = logging.getLogger(__name__)

# Reads by id carry the change counter (changes.py) in the same round trip: the row joined to store_head,
# so a read finds out that another node changed what this node's caches hold even when the row is absent.
_READ = ("SELECT s.changes, r.version, r.last_updated, r.deleted, r.data, r.patients FROM store_head s "
         "LEFT JOIN resources r ON r.type = %s AND r.id = %s WHERE s.id = 1")
_VREAD = ("SELECT s.changes, h.version, h.last_updated, h.deleted, h.data, h.method, h.patients FROM store_head s "
          "LEFT JOIN (history h JOIN resources r ON r.rid = h.rid AND r.type = %s AND r.id = %s) "
          "ON h.version = %s WHERE s.id = 1")
_SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY; SELECT changes FROM store_head WHERE id = 1"
# on a replica (replicas.py): the same reads with the replica's store_head.last_micros in front, for the
# read-your-writes check; its change counter is not used (the primary's is read alongside)
_ON_REPLICA = {sql: sql.replace("SELECT s.changes,", "SELECT s.last_micros, s.changes,", 1) for sql in (_READ, _VREAD)}
_SNAPSHOT_AT = ("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY; "
                "SELECT last_micros FROM store_head WHERE id = 1")
_COUNTER = "SELECT changes, last_micros FROM store_head WHERE id = 1"
# the counter raised and the other nodes notified in one statement (the NOTIFY goes out at COMMIT)
_CHANGED = ("WITH h AS (UPDATE store_head SET changes = changes + 1 WHERE id = 1 RETURNING changes) "
            f"SELECT h.changes, pg_notify('{CHANNEL}', h.changes::text || ' ' || %s::text) FROM h")
_HEAD = "SELECT last_micros, next_seq, next_rid FROM store_head WHERE id = 1 FOR UPDATE"


# a claim of due outbox rows (outbox_due): leased by moving available_at to the lease's end
_CLAIM = (f"UPDATE outbox SET available_at = %s WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' "
          f"AND topic = %s AND available_at <= %s ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) "
          f"RETURNING {outbox.COLUMNS}")
_LEASE = ("UPDATE jobs SET lease_holder = %s, lease_until = now() + make_interval(secs => %s) WHERE id = "
          "(SELECT id FROM jobs WHERE id = %s AND status = 'in-progress' AND (lease_holder IS NULL OR "
          "lease_holder = %s OR lease_until < now()) FOR UPDATE SKIP LOCKED) RETURNING id")
# a renewal of claimed rows (outbox_renew): only those still pending under the claim's own lease end
_RENEW = ("UPDATE outbox SET available_at = %s WHERE id = ANY(%s) AND status = 'pending' AND available_at = %s "
          f"RETURNING {outbox.COLUMNS}")
#: how long a claimed outbox message is a worker's before another may take it over
OUTBOX_LEASE_SECONDS = 60
#: how long a request waits for a pooled connection before it is answered 503 (setting database_pool_timeout)
POOL_TIMEOUT_SECONDS = 30.0
#: how long it waits while the database is known to be out of reach (a connection failed and none has
#: worked since): clients are told 503 at once instead of each holding a connection slot for the full wait
DOWN_WAIT_SECONDS = 1.0
#: how long a pool retries (backing off 1, 2, 4 s) to replace a lost connection before it gives up; the next
#: request that finds no connection starts a new attempt at once, so a database that is back is found again
#: within seconds, however long it was away
RECONNECT_SECONDS = 5.0


_BEHIND = object()  # a replica's answer the primary must replace (behind the client's write, or failed)


def _after() -> int:
    """The instant a replica must have replayed for this request (its client's last write; 0: none)."""
    route = ROUTE.get()
    return route.after if route is not None else 0


def _micros(stamp: str) -> int:
    """An instant the outbox speaks (``...Z``, with or without a fraction) in microseconds."""
    parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return int(parsed.replace(microsecond=0).timestamp()) * 1_000_000 + parsed.microsecond


def _stamp(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class PostgresStore:
    """Implements :class:`fhir_server.storage.protocols.Store` on one PostgreSQL database (``url``, a
    libpq ``postgresql://`` URL); the audit trail keeps the chain by ``rules`` (fhir_server/backends.py)."""

    def __init__(self, url: str, *, rules: ChainRules, pool_size: int = 8, statement_timeout_ms: int = 0,
                 outbox_lease_seconds: int = OUTBOX_LEASE_SECONDS,
                 pool_timeout_seconds: float = POOL_TIMEOUT_SECONDS, replicas: Iterable[str] = (),
                 replica_max_lag_seconds: float = 30.0, transaction_pooling: bool = False,
                 listen_url: str = "") -> None:
        self.url = url
        self.transaction_pooling = transaction_pooling
        # LISTEN needs a session of its own: behind a transaction pooler only a direct URL carries it (changes.py)
        self._listen_url = listen_url or ("" if transaction_pooling else url)
        self._lease_s = outbox_lease_seconds
        self._rules = rules
        self.audit = PgAuditLog(self, rules)
        self._pool_size = max(1, pool_size)
        self._timeout_ms = int(statement_timeout_ms)
        self._pool_timeout = float(pool_timeout_seconds)
        self._kwargs: dict[str, Any] = connect_kwargs(url, self._timeout_ms, transaction_pooling=transaction_pooling)
        self._checked = 0.0  # when the pools were last checked after a lost connection (_lost)
        self._down = False  # a connection failed and nothing has worked since: wait DOWN_WAIT_SECONDS
        self._checks: set[asyncio.Task[None]] = set()
        urls = [u for u in replicas if u]
        # hot standbys that may serve a request's reads (replicas.py); None: the primary serves everything
        self.replicas = ReplicaSet(urls, self._kwargs, self._pool_size, replica_max_lag_seconds) if urls else None
        #: what api/operator.py keeps per client for read-your-writes (None without replicas)
        self.read_your_writes = self.replicas.read_your_writes if self.replicas is not None else None
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._apool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None
        self._threads: ThreadPoolExecutor | None = None
        # Units are serialized anyway (store_head): one writer thread per process queues them here, so that
        # waiting writes hold neither the readers' threads nor more than one connection.
        self._writer: ThreadPoolExecutor | None = None
        self.changes = ChangeFeed()  # other nodes' writes invalidate this process's caches (changes.py)
        self._listener: asyncio.Task[None] | None = None
        self._chainer: asyncio.Task[None] | None = None  # chains staged read audit (read_audit.py)
        # reads by id on the primary, batched while one lookup is in flight (read_batch.py)
        self._reads = ReadBatcher(self._fetch_batch, lambda changes: self.changes.advance(changes, None))

    # -- lifecycle ---------------------------------------------------------------------------------
    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self._threads = ThreadPoolExecutor(self._pool_size, thread_name_prefix="kzfhir-pg-read")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="kzfhir-pg-write")
        pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            self.url, min_size=1, max_size=self._pool_size + 1, kwargs=self._kwargs, open=False, name="kzfhir",
            timeout=self._pool_timeout, reconnect_timeout=RECONNECT_SECONDS, reconnect_failed=self._gave_up)
        await loop.run_in_executor(self._threads, lambda: pool.open(wait=True, timeout=30))
        self._pool = pool

        def schema() -> None:
            with pool.connection() as conn:
                create_schema(conn, self._rules.genesis)

        await loop.run_in_executor(self._threads, schema)
        if self.transaction_pooling:
            await loop.run_in_executor(self._threads, self._check_pooled_timeout)
        apool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            self.url, min_size=1, max_size=self._pool_size, kwargs=self._kwargs, open=False, name="kzfhir-async",
            timeout=self._pool_timeout, reconnect_timeout=RECONNECT_SECONDS, reconnect_failed=self._gave_up)
        await apool.open(wait=True, timeout=30)
        self._apool = apool
        if self._listen_url:
            pooled = self.transaction_pooling and self._listen_url == self.url
            listen_kwargs = connect_kwargs(self._listen_url, self._timeout_ms, transaction_pooling=pooled)
            self._listener = loop.create_task(self.changes.listen(self._listen_url, listen_kwargs),
                                              name="kzfhir-pg-changes")
        else:  # the change counter read with every read keeps the guarantee; idle processes drop caches later
            log.info("change listener off: the database URL is a transaction pooler and no listen URL is set")
        if self.replicas is not None:
            await self.replicas.open(self._primary_head)
        self._chainer = loop.create_task(self._chain_reads(), name="kzfhir-pg-read-chain")

    def _check_pooled_timeout(self) -> None:
        """Behind a transaction pooler the statement timeout cannot be sent at connect (conn.py): say so at
        start when the role's own setting is not the configured one, rather than run without a limit."""
        assert self._pool is not None
        with self._pool.connection() as conn:
            row = conn.execute("SELECT setting::bigint FROM pg_settings WHERE name = 'statement_timeout'").fetchone()
        effective = int(row[0]) if row else 0
        if effective != self._timeout_ms:
            log.warning("statement_timeout is %d ms on the database's role, not the configured %d ms: behind a "
                        "transaction pooler set it with ALTER ROLE … SET statement_timeout (docs/deployment.md)",
                        effective, self._timeout_ms)

    def watch_changes(self, types: Iterable[str], callback: Callable[[], None]) -> None:
        """Call ``callback`` when a unit that wrote one of ``types`` commits in another process or node
        (this process's own units run their ``on_commit`` callbacks); see changes.py."""
        self.changes.watch(types, callback)

    # -- the database out of reach ---------------------------------------------------------------------
    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn "the database is out of reach" (conn.py, ``is_unavailable``) into :class:`DatabaseUnavailable`
        (503, ``Retry-After``) and have the pools drop their broken connections; any other error passes."""
        try:
            yield
        except psycopg.Error as exc:
            if not is_unavailable(exc):
                raise
            self._lost(exc)
            raise DatabaseUnavailable(reason_of(exc)) from exc
        self._down = False

    @property
    def _wait(self) -> float:
        """How long the next request waits for a pooled connection."""
        return DOWN_WAIT_SECONDS if self._down else self._pool_timeout

    def _gave_up(self, pool: object) -> None:
        """A pool could not replace a lost connection for RECONNECT_SECONDS: the database is away."""
        self._down = True

    async def _guarded(self, work: Awaitable[T]) -> T:
        with self._guard():
            return await work

    def _lost(self, exc: psycopg.Error) -> None:
        """A connection failed: the database is away (a pool's wait that ran out is that only when it was
        away already: otherwise every connection was busy), and every idle connection of the pools is
        checked (at most once a second), so that after a restart or a failover the next requests get new
        connections instead of broken ones each failing in turn. The pools reconnect by themselves
        (RECONNECT_SECONDS)."""
        if not isinstance(exc, PoolTimeout):
            self._down = True
        now = time.monotonic()
        if now - self._checked < 1.0:
            return
        self._checked = now
        try:
            task = asyncio.get_running_loop().create_task(self._check_pools(), name="kzfhir-pg-check")
        except RuntimeError:  # not on the event loop (a worker thread): the pools' own checks will do
            return
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    async def _check_pools(self) -> None:
        try:
            if self._apool is not None:
                await self._apool.check()
            if self._pool is not None and self._threads is not None:
                await asyncio.get_running_loop().run_in_executor(self._threads, self._pool.check)
        except Exception as exc:  # the pool closing meanwhile, a thread pool shut down ...: nothing to check
            log.debug("pool check: %s", exc)

    async def close(self) -> None:
        for task in list(self._checks):
            task.cancel()
        if self._chainer is not None:
            self._chainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._chainer
            self._chainer = None
        await self.audit.stager.drain()
        with contextlib.suppress(Exception):  # what this process staged last is chained now if it can be
            await self.audit.sync()          # (else by another process, or at the next start)
        if self.replicas is not None:
            await self.replicas.close()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._apool is not None:
            await self._apool.close()
            self._apool = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.get_running_loop().run_in_executor(self._threads, pool.close)
        for executor in (self._writer, self._threads):
            if executor is not None:
                executor.shutdown(wait=True)
        self._threads = self._writer = None

    # -- writes ------------------------------------------------------------------------------------
    def _apply(self, unit: Callable[[Any], T], relaxed: bool, queued: float) -> tuple[T, int]:
        assert self._pool is not None
        if self._down and time.monotonic() - queued > DOWN_WAIT_SECONDS:
            # units queue on the one writer thread, each waiting for a connection: while the database is
            # away, one that has waited its turn that long is answered now, not after everyone before it
            raise DatabaseUnavailable("the database was away while this write waited its turn")
        with self._pool.connection(timeout=self._wait) as raw:
            try:
                result, view, changed, kinds, micros = self._apply_on(raw, unit, relaxed)
            except psycopg.errors.ReadOnlySqlTransaction:
                raw.close()  # a standby where the primary was (failover): the pool connects anew
                raise
        if changed is not None:
            self.changes.advance(int(changed[0]), kinds)
        for callback in view.after_commit:  # after COMMIT, before the caller hears of it
            callback()
        return result, micros

    def _apply_on(self, raw: psycopg.Connection[Any], unit: Callable[[Any], T], relaxed: bool
                  ) -> tuple[T, PgTxView, tuple[Any, ...] | None, list[str], int]:
        conn = QmarkConnection(raw)
        changed: tuple[Any, ...] | None = None
        kinds: list[str] = []
        with raw.transaction():
            if relaxed:
                raw.execute("SET LOCAL synchronous_commit = off")
            head = self._lock_head(raw)
            assert head is not None, "store_head is missing"
            micros = max(time.time_ns() // 1000, int(head[0]) + 1)
            view = PgTxView(conn, _stamp(micros), int(head[1]), self._rules, int(head[2]))
            # pipeline mode: writes whose results the unit does not read (index rows, history, chain
            # rows) go out without waiting each for its answer; a read (current, search_ids) syncs
            with raw.pipeline():
                result = unit(view)
            raw.execute("UPDATE store_head SET last_micros = %s, next_seq = %s, next_rid = %s WHERE id = 1",
                        [micros, view.next_seq, view.next_rid])
            kinds = self.changes.watched(view.written)
            if kinds:
                changed = raw.execute(_CHANGED, [" ".join(kinds)]).fetchone()
        return result, view, changed, kinds, micros

    def _lock_head(self, raw: psycopg.Connection[Any]) -> tuple[Any, ...] | None:
        """Take ``store_head``: the wait for another node's unit is queueing, not a slow statement, so the
        statement timeout is lifted for it (one round trip: the three statements go as one query)."""
        if self._timeout_ms <= 0:
            return raw.execute(_HEAD).fetchone()
        cur = raw.execute(f"SET LOCAL statement_timeout = 0; {_HEAD}; SET LOCAL statement_timeout = {self._timeout_ms}")
        cur.nextset()
        return cur.fetchone()

    async def transaction(self, unit: Callable[[Any], T], *, relaxed: bool = False) -> T:
        if self._writer is None:
            raise RuntimeError("store is not open")
        result, micros = await self._guarded(
            asyncio.get_running_loop().run_in_executor(self._writer, self._apply, unit, relaxed, time.monotonic()))
        route = ROUTE.get()
        if route is not None and not relaxed:  # read audit is no write of the client's (read-your-writes)
            route.wrote(micros)
        return result

    # -- read audit (read_audit.py) ------------------------------------------------------------------
    async def stage_insert(self, reads: int, data: bytes) -> None:
        """One batch of read-audit lines in ``read_audit``, committed (not waiting for a WAL flush)."""
        if self._apool is None:
            raise RuntimeError("store is not open")
        with self._guard():
            async with self._apool.connection(timeout=self._wait) as conn:
                await conn.execute(STAGE_SQL, [reads, data])

    async def staged_waiting(self) -> bool:
        """Are reads staged that are not chained yet (by any process)?"""
        row = await self._fetchone(WAITING_SQL, [])
        return bool(row and row[0])

    async def chain_unit(self, unit: Callable[[Any], T]) -> T:
        """A unit on the writer (``store_head`` held) that chains staged reads: committed durably, and no
        write of the request's client (read-your-writes is not moved by it)."""
        if self._writer is None:
            raise RuntimeError("store is not open")
        result, _ = await self._guarded(asyncio.get_running_loop().run_in_executor(
            self._writer, self._apply, unit, False, time.monotonic()))
        return result

    async def _chain_reads(self) -> None:
        """Every CHAIN_SECONDS: chain what any process staged (one index probe when nothing is)."""
        while True:
            await asyncio.sleep(CHAIN_SECONDS)
            try:
                await self.audit.sync()
            except DatabaseUnavailable:
                pass  # the database is away: staged rows wait in it, for this process or another
            except Exception:  # the loop goes on: the rows stay staged, nothing is lost
                log.exception("chaining staged read audit failed")

    # -- reads -------------------------------------------------------------------------------------
    def _read(self, fn: Callable[[QmarkConnection], T], snapshot: bool) -> T:
        assert self._pool is not None
        with self._pool.connection(timeout=self._wait) as raw:
            conn = QmarkConnection(raw)
            if not snapshot:
                return fn(conn)
            with raw.transaction():
                cur = raw.execute(_SNAPSHOT)
                cur.nextset()
                counter = cur.fetchone()
                if counter is not None:
                    self.changes.advance(int(counter[0]), None)  # before fn judges anything by a cache
                return fn(conn)

    async def run_query(self, fn: Callable[[QmarkConnection], T], *, snapshot: bool = False) -> T:
        """Run a read on a worker thread with a pooled connection (``snapshot``: in one REPEATABLE READ
        transaction). Not named ``run_read``: that is the SQLite store's, whose callers pass sqlite3 code
        (api/operator.py's schema check)."""
        if self._threads is None:
            raise RuntimeError("store is not open")
        return await self._guarded(asyncio.get_running_loop().run_in_executor(self._threads, self._read, fn, snapshot))

    async def _fetchone(self, sql: str, args: list[Any]) -> tuple[Any, ...] | None:
        if self._apool is None:
            raise RuntimeError("store is not open")
        with self._guard():
            async with self._apool.connection(timeout=self._wait) as conn:
                cur = await conn.execute(sql, args)
                row: tuple[Any, ...] | None = await cur.fetchone()
                return row

    async def _fetch_counted(self, sql: str, args: list[Any]) -> tuple[Any, ...] | None:
        """A row of ``_READ`` / ``_VREAD`` without its change counter (None: no such row), after acting on
        the counter: the caller's access decision must not come from a cache another node made stale."""
        replica = self._replica()
        if replica is not None:
            found = await self._fetch_on_replica(replica, sql, args)
            if found is not _BEHIND:
                return found  # type: ignore[return-value]
        if self.replicas is not None:
            self.replicas.served_by(None)
        row = await self._fetchone(sql, args)
        if row is None:
            return None
        self.changes.advance(int(row[0]), None)
        return None if row[1] is None else row[1:]

    async def _fetch_batch(self, types: list[str], ids: list[str]) -> list[Row]:
        if self._apool is None:
            raise RuntimeError("store is not open")
        with self._guard():
            async with self._apool.connection(timeout=self._wait) as conn:
                cur = await conn.execute(BATCH_SQL, [types, ids])
                rows: list[Row] = await cur.fetchall()
                return rows

    # -- reads on a replica (replicas.py) ---------------------------------------------------------------
    def _replica(self) -> Replica | None:
        """The replica this request's next read may go to (None: the primary serves it)."""
        if self.replicas is None:
            return None
        route = ROUTE.get()
        return self.replicas.pick() if route is not None and route.replicas else None

    async def _primary_head(self) -> int:
        row = await self._fetchone("SELECT last_micros FROM store_head WHERE id = 1", [])
        return int(row[0]) if row else 0

    async def _primary_counter(self) -> None:
        """The primary's change counter, acted on (changes.py): what decides access stays the primary's."""
        row = await self._fetchone(_COUNTER, [])
        if row is not None:
            self.changes.advance(int(row[0]), None)

    async def _fetch_on_replica(self, replica: Replica, sql: str, args: list[Any]) -> object:
        """``_fetch_counted`` served by ``replica`` with the primary's counter read alongside; ``_BEHIND``
        when the replica has not replayed the client's last write yet, or failed."""
        assert self.replicas is not None
        after = _after()

        async def on_replica() -> tuple[Any, ...] | None:
            async with replica.apool.connection() as conn:
                cur = await conn.execute(_ON_REPLICA[sql], args)
                row: tuple[Any, ...] | None = await cur.fetchone()
                return row

        counted: BaseException | None
        found: tuple[Any, ...] | BaseException | None
        counted, found = await asyncio.gather(self._primary_counter(), on_replica(), return_exceptions=True)
        if isinstance(counted, BaseException):
            raise counted  # the primary out of reach: 503 (_guard), as without replicas
        if isinstance(found, BaseException):
            if not isinstance(found, Exception) or not unusable(found):
                raise found
            self.replicas.failed(replica, found)
            return _BEHIND
        if found is None:
            return _BEHIND
        if int(found[0]) < after:
            self.replicas.fell_back("behind the client's write")
            return _BEHIND
        self.replicas.served_by(replica)
        return None if found[2] is None else found[2:]

    def _read_on_replica(self, replica: Replica, fn: Callable[[QmarkConnection], T], after: int) -> T | object:
        """``fn`` in one snapshot of ``replica``; ``_BEHIND`` when it has not replayed ``after`` yet."""
        with replica.pool.connection() as raw, raw.transaction():
            cur = raw.execute(_SNAPSHOT_AT)
            cur.nextset()
            head = cur.fetchone()
            if head is None or int(head[0]) < after:
                return _BEHIND
            return fn(QmarkConnection(raw))

    async def _routed(self, fn: Callable[[QmarkConnection], T], *, snapshot: bool) -> T:
        """A search, history or include round: on a replica when the request's route allows it and the
        replica has replayed the client's last write (the primary's counter read alongside), else
        ``run_query`` on the primary."""
        replica = self._replica()
        if replica is None or self._threads is None or self.replicas is None:
            if self.replicas is not None:
                self.replicas.served_by(None)
            return await self.run_query(fn, snapshot=snapshot)
        loop = asyncio.get_running_loop()
        counted: BaseException | None
        found: T | object | BaseException
        counted, found = await asyncio.gather(
            self._primary_counter(),
            loop.run_in_executor(self._threads, self._read_on_replica, replica, fn, _after()),
            return_exceptions=True)
        if isinstance(counted, BaseException):
            raise counted
        if isinstance(found, BaseException):
            if not isinstance(found, Exception) or not unusable(found):
                raise found
            self.replicas.failed(replica, found)
        elif found is _BEHIND:
            self.replicas.fell_back("behind the client's write")
        else:
            self.replicas.served_by(replica)
            return found  # type: ignore[return-value]
        self.replicas.served_by(None)
        return await self.run_query(fn, snapshot=snapshot)

    async def schema_problems(self) -> list[str]:
        """What makes the database unfit for this kzfhir (/ready): no ``kzfhir_schema`` (not created by
        kzfhir, or damaged), no version in it, or another version than this release's."""
        def check(conn: QmarkConnection) -> list[str]:
            present = conn.execute("SELECT to_regclass('kzfhir_schema') IS NOT NULL").fetchone()
            if present is None or not present[0]:
                return ["table kzfhir_schema is missing: not a kzfhir database, or not upgraded (kzfhir db upgrade)"]
            row = conn.execute("SELECT version FROM kzfhir_schema WHERE id = 1").fetchone()
            if row is None:
                return ["kzfhir_schema records no version (kzfhir db upgrade)"]
            found = int(row[0])
            if found > SCHEMA_VERSION:
                return [f"schema version {found} is newer than this kzfhir's ({SCHEMA_VERSION}): a newer release "
                        "upgraded the database; run that release"]
            if found < SCHEMA_VERSION:
                return [f"schema version {found} is older than this kzfhir's ({SCHEMA_VERSION}): kzfhir db upgrade"]
            return []

        return await self.run_query(check)

    @property
    def primary_reads(self) -> Any:
        """The store as the access policy reads its facts: on the primary (security/setup.py)."""
        return PrimaryReads(self) if self.replicas is not None else self

    def replica_figures(self) -> dict[str, Any] | None:
        """Who served reads and how far each replica is behind (/metrics, /ready); None without replicas."""
        return self.replicas.figures() if self.replicas is not None else None

    async def read(self, resource_type: str, resource_id: str) -> StoredResource | None:
        route = ROUTE.get() if self.replicas is not None else None
        if route is None or not route.replicas:  # the primary's: batched with the other reads of the moment
            if self.replicas is not None:
                self.replicas.served_by(None)
            row = await self._reads.read(resource_type, resource_id)
        else:  # a replica may serve it (the request's route allows it), else the primary
            row = await self._fetch_counted(_READ, [resource_type, resource_id])
        if row is None:
            return None
        return StoredResource(resource_type, resource_id, row[0], row[1], bool(row[2]), row[3], "PUT", row[4])

    async def vread(self, resource_type: str, resource_id: str, version: int) -> StoredResource | None:
        row = await self._fetch_counted(_VREAD, [resource_type, resource_id, version])
        if row is None:
            return None
        return StoredResource(resource_type, resource_id, row[0], row[1], bool(row[2]), row[3], row[4], row[5])

    async def history(self, query: HistoryQuery) -> HistoryPage:
        return await self._routed(lambda conn: query_history(conn, query, POSTGRES), snapshot=True)

    async def search(self, query: Any) -> Any:
        return await self._routed(lambda conn: run_planned_search(conn, query, POSTGRES), snapshot=True)

    async def include(self, specs: Any, sources: Any, limit: int) -> Any:
        return await self._routed(lambda conn: include_round(conn, specs, sources, limit, POSTGRES), snapshot=False)

    async def search_ids(self, query: Any, limit: int) -> list[tuple[str, str]]:
        # conditional matching decides writes: always the primary
        return await self.run_query(lambda conn: match_ids(conn, query, limit, POSTGRES))

    # -- outbox and jobs ---------------------------------------------------------------------------
    async def outbox_due(self, topic: str, now: str, limit: int) -> list[OutboxItem]:
        """Claim due messages: each is leased to this caller for ``outbox_lease_seconds`` (its
        ``available_at`` moved to the lease's end), rows another worker holds are skipped (``FOR UPDATE
        SKIP LOCKED``), so with workers on several nodes each message goes to one of them. Delivery is at
        least once: a worker that dies leaves its lease to expire and another takes the message over
        (channels carry the idempotency key); settling is idempotent (txview.py)."""
        until = _stamp(_micros(now) + self._lease_s * 1_000_000)
        if self._threads is None:
            raise RuntimeError("store is not open")

        def claim() -> list[OutboxItem]:
            assert self._pool is not None
            with self._pool.connection(timeout=self._wait) as raw:
                rows = raw.execute(_CLAIM, [until, topic, now, limit]).fetchall()
            return sorted((outbox.item(r) for r in rows), key=lambda item: item.id)

        return await self._guarded(asyncio.get_running_loop().run_in_executor(self._threads, claim))

    @property
    def outbox_lease_seconds(self) -> int:
        """How long a claim of ``outbox_due`` lasts unless renewed (jobs/leases.py renews it)."""
        return self._lease_s

    async def outbox_renew(self, items: list[OutboxItem], now: str) -> list[OutboxItem]:
        """Extend the lease of claimed messages to ``now`` + the lease, for those still pending under the
        lease they were claimed (or last renewed) with: their ``available_at`` is the claim's token. A
        message settled meanwhile, or taken over by another worker after the lease ran out, is not
        renewed and not returned: the caller no longer holds it and must not deliver it."""
        if not items:
            return []
        if self._threads is None:
            raise RuntimeError("store is not open")
        until = _stamp(_micros(now) + self._lease_s * 1_000_000)
        by_token: dict[str, list[int]] = {}
        for item in items:
            by_token.setdefault(item.available_at, []).append(item.id)

        def renew() -> list[OutboxItem]:
            assert self._pool is not None
            with self._pool.connection(timeout=self._wait) as raw:
                rows = [r for token, ids in by_token.items()
                        for r in raw.execute(_RENEW, [until, ids, token]).fetchall()]
            return sorted((outbox.item(r) for r in rows), key=lambda item: item.id)

        return await self._guarded(asyncio.get_running_loop().run_in_executor(self._threads, renew))

    async def outbox_partition(self, topic: str, partition: str, limit: int,
                               before_id: int | None = None) -> list[OutboxItem]:
        return await self.run_query(
            lambda conn: outbox.by_partition(conn, topic, partition, limit, before_id))  # type: ignore[arg-type]

    async def outbox_by_status(self, topic: str, status: str, limit: int,
                               before_id: int | None = None) -> list[OutboxItem]:
        return await self.run_query(
            lambda conn: outbox.by_status(conn, topic, status, limit, before_id))  # type: ignore[arg-type]

    async def outbox_counts(self, topics: list[str]) -> list[tuple[str, str, int]]:
        return await self.run_query(lambda conn: outbox.counts(conn, topics))  # type: ignore[arg-type]

    async def get_job(self, job_id: str) -> tuple[str, str, str, bytes] | None:
        row = await self._fetchone("SELECT kind, status, updated, data FROM jobs WHERE id = %s", [job_id])
        return (row[0], row[1], row[2], bytes(row[3])) if row else None

    async def lease_job(self, job_id: str, holder: str, seconds: float) -> bool:
        """Take or renew the lease of a running job for ``holder`` (a process) for ``seconds`` of the
        database's clock: True when it is now the holder's — it held it, nobody did, or the last holder
        let it run out (a node that died: the job is taken over). Two processes asking at once for an
        expired lease: one gets it (``FOR UPDATE SKIP LOCKED``), the other is told it is held."""
        row = await self._fetchone(_LEASE, [holder, seconds, job_id, holder])
        return row is not None

    async def list_jobs(self, kind: str, status: str) -> list[tuple[str, bytes]]:
        if self._apool is None:
            raise RuntimeError("store is not open")
        with self._guard():
            async with self._apool.connection(timeout=self._wait) as conn:
                cur = await conn.execute("SELECT id, data FROM jobs WHERE kind = %s AND status = %s", [kind, status])
                return [(r[0], bytes(r[1])) for r in await cur.fetchall()]


if TYPE_CHECKING:  # mypy holds the backend to the protocols it implements
    from fhir_server.storage.audit import AuditLog, AuditTx
    from fhir_server.storage.protocols import Store, TxView

    def _implements(store: PostgresStore, view: PgTxView) -> tuple[Store, TxView, AuditLog, AuditTx]:
        return store, view, store.audit, view.audit
