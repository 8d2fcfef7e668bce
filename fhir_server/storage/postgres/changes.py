"""Invalidation of per-process caches on every node (issue 11 §3: "a revoked Consent stops the very next
read on every node").

Caches that decide access (the consent facts per patient, and the read gate's verdicts keyed on their
generation) are invalidated in the writing process by the unit's ``on_commit`` callbacks; the other
processes and nodes on the database hear of the commit in two ways:

* **the change counter** ``store_head.changes``, raised inside the writing transaction by every unit
  that wrote a watched type. Every read by id and vread returns it with the row (one query), and every
  search and history snapshot reads it first; a process that finds it ahead of what it has acted on
  drops all its watched caches before it uses them. This is what makes the guarantee hold for the very
  next request: a notification is asynchronous and may arrive after the next request does.
* **LISTEN/NOTIFY** on :data:`CHANNEL`: the unit's ``pg_notify`` (sent at COMMIT, with the counter and the
  types written) reaches one listener connection per process, which runs only the callbacks watching
  those types, so idle processes drop stale caches without waiting for a read. When the listener
  connection is lost, notifications sent meanwhile are lost too: on reconnecting it drops every cache.

Callbacks run on the event loop (listener) or on a worker thread (reads): they must be thread-safe and
quick (``SharedFacts.bump`` takes a lock and clears a dict).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

import psycopg

log = logging.getLogger(__name__)

CHANNEL = "kzfhir_changes"
#: how long the listener waits for a notification before it checks the connection with a query
IDLE_CHECK_SECONDS = 10.0
_RETRY_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)


class ChangeFeed:
    """The watchers of one process, and the change counter it has acted on."""

    def __init__(self) -> None:
        self._watchers: list[tuple[frozenset[str], Callable[[], None]]] = []
        self._types: frozenset[str] = frozenset()
        self._lock = threading.Lock()
        self.seen = 0  # store_head.changes this process's caches reflect
        self.listening = False  # a listener connection is up (tests, /ready)

    def watch(self, types: Iterable[str], callback: Callable[[], None]) -> None:
        """Call ``callback`` when a unit that wrote one of ``types`` commits on any node."""
        kinds = frozenset(types)
        with self._lock:
            self._watchers.append((kinds, callback))
            self._types |= kinds

    def watched(self, types: Iterable[str]) -> list[str]:
        """The watched ones among the types a unit wrote (sorted: the notification's payload)."""
        return sorted(set(types) & self._types)

    def advance(self, counter: int, types: Iterable[str] | None) -> None:
        """The database's counter is ``counter`` after a unit that wrote ``types`` (None: unknown, e.g.
        found by a read before its notification arrived). Runs the callbacks concerned, once."""
        with self._lock:
            if counter <= self.seen:
                return
            # a gap means units this process has not heard of: any cache may be stale
            kinds = None if types is None or counter != self.seen + 1 else frozenset(types)
            self.seen = counter
            callbacks = [cb for watched, cb in self._watchers if kinds is None or watched & kinds]
        self._run(callbacks)

    def reset(self, counter: int) -> None:
        """Drop every watched cache (the listener reconnected: notifications may have been lost)."""
        with self._lock:
            self.seen = max(self.seen, counter)
            callbacks = [cb for _, cb in self._watchers]
        self._run(callbacks)

    @staticmethod
    def _run(callbacks: list[Callable[[], None]]) -> None:
        for callback in callbacks:
            try:
                callback()
            except Exception:  # one broken watcher must not keep the others' caches stale
                log.exception("cache invalidation callback failed")

    # -- the listener ------------------------------------------------------------------------------
    async def listen(self, url: str, kwargs: dict[str, Any]) -> None:
        """Listen on :data:`CHANNEL` until cancelled, reconnecting when the connection is lost."""
        failures = 0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(url, **kwargs) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.reset(await _counter(conn))  # after LISTEN: nothing committed since is missed
                    self.listening = True
                    failures = 0
                    await self._receive(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # lost connection, database restarting, failover ...
                log.warning("change listener: %s; reconnecting", exc)
            finally:
                self.listening = False
            await asyncio.sleep(_RETRY_SECONDS[min(failures, len(_RETRY_SECONDS) - 1)])
            failures += 1

    async def _receive(self, conn: psycopg.AsyncConnection[Any]) -> None:
        while True:
            got = False
            async for notify in conn.notifies(timeout=IDLE_CHECK_SECONDS):
                got = True
                counter, _, types = notify.payload.partition(" ")
                with contextlib.suppress(ValueError):
                    self.advance(int(counter), types.split())
            if not got:  # quiet for a while: make sure the connection still answers
                await _counter(conn)


async def _counter(conn: psycopg.AsyncConnection[Any]) -> int:
    row = await (await conn.execute("SELECT changes FROM store_head WHERE id = 1")).fetchone()
    return int(row[0]) if row else 0
