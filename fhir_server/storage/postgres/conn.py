"""A psycopg connection that speaks the SQLite backend's query dialect: ``?`` placeholders.

The search planner, history, outbox and audit queries of ``storage/sqlite/`` are written with ``?``
and standard SQL (the few differences come from ``search/dialect.py``); through :class:`QmarkConnection`
they run on PostgreSQL unchanged. ``?`` never appears in their SQL text other than as a placeholder, and
``%`` only inside parameters (LIKE patterns are arguments), so the translation is a textual one, cached.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import psycopg


@lru_cache(maxsize=4096)
def to_pyformat(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (and a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class QmarkConnection:
    """The sqlite3-like face of one psycopg connection: ``execute`` returns a cursor with ``fetchone``,
    ``fetchall`` and iteration; ``executemany`` for batches."""

    __slots__ = ("raw",)

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, sql: str, args: Sequence[Any] | None = None) -> psycopg.Cursor[Any]:
        return self.raw.execute(to_pyformat(sql), list(args or ()))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        batch = [list(r) for r in rows]
        if batch:
            with self.raw.cursor() as cur:
                cur.executemany(to_pyformat(sql), batch)

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
