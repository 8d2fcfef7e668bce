"""Reads by id on the primary, batched: the reads a process receives while one lookup is in flight go to
PostgreSQL together, as one statement, when that lookup returns.

A read by id is the request a FHIR server answers most, and on PostgreSQL most of its cost is not the
lookup but the driver around it: taking a connection from the pool and giving it back, building a cursor,
sending the query, waiting for the socket, parsing the answer (about three quarters of the compiled read's
time on the event loop; docs/performance.md). One statement for the reads of the moment,

    SELECT s.changes, q.n, r.… FROM store_head s
    CROSS JOIN unnest(types, ids) WITH ORDINALITY q(type, id, n)
    LEFT JOIN resources r ON r.type = q.type AND r.id = q.id WHERE s.id = 1

pays that once per batch (and PostgreSQL parses and plans one statement instead of many). Nothing
changes for the reader: each read still sees only committed rows (the statement is one snapshot), still
carries the change counter read with it (changes.py: acted on before any read of the batch is judged), and
an idle server still answers a lone read at once — a batch is whatever arrived during the previous round
trip, never a wait for more. Reads that may go to a replica (replicas.py) are not batched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

#: the most reads one statement carries (the rest go in the next)
MAX_BATCH = 256

BATCH_SQL = ("SELECT s.changes, q.n, r.version, r.last_updated, r.deleted, r.data, r.patients FROM store_head s "
             "CROSS JOIN unnest(%s::text[], %s::text[]) WITH ORDINALITY AS q(type, id, n) "
             "LEFT JOIN resources r ON r.type = q.type AND r.id = q.id WHERE s.id = 1")

Row = tuple[Any, ...]


class ReadBatcher:
    """``read(type, id)`` answered from batched lookups. ``fetch(types, ids)`` runs ``BATCH_SQL`` and returns
    its rows; ``counter(changes)`` is told the change counter of each batch before its reads are answered."""

    def __init__(self, fetch: Callable[[list[str], list[str]], Awaitable[list[Row]]],
                 counter: Callable[[int], None]) -> None:
        self._fetch = fetch
        self._counter = counter
        self._pending: list[tuple[str, str, asyncio.Future[Row | None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.reads = 0  # figures: reads answered, statements sent
        self.batches = 0

    async def read(self, resource_type: str, resource_id: str) -> Row | None:
        """(version, last_updated, deleted, data, patients) of the current row, or None when there is none."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Row | None] = loop.create_future()
        self._pending.append((resource_type, resource_id, future))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush(), name="kzfhir-pg-read-batch")
        return await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                try:
                    rows = await self._fetch([b[0] for b in batch], [b[1] for b in batch])
                except Exception as exc:  # every read of the batch is told (503 while the database is away)
                    for _, _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                except BaseException:
                    for _, _, future in batch:
                        future.cancel()
                    raise
                if rows:
                    self._counter(int(rows[0][0]))  # before any of the batch's reads is judged by a cache
                found: dict[int, Row | None] = {int(row[1]): None if row[2] is None else row[2:] for row in rows}
                for n, (_, _, future) in enumerate(batch, start=1):
                    if not future.done():
                        future.set_result(found.get(n))
                self.reads += len(batch)
                self.batches += 1
        finally:
            self._flusher = None
