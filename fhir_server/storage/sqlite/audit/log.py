"""``storage.audit.AuditLog`` of the SQLite store: the read-audit journal on the read hot path, and
the trail's reads and verification on the store's reader threads."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from fhir_server.storage.audit import ChainReport, ChainRules
from fhir_server.storage.sqlite.audit.journal import AuditJournal
from fhir_server.storage.sqlite.audit.queries import audit_event_row, audit_rows, block_events
from fhir_server.storage.sqlite.audit.verify import verify_connection

T = TypeVar("T")


class _Backend(Protocol):
    """What the log needs of its store (SqliteStore)."""

    async def run_read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    async def transaction(self, unit: Callable[[Any], T], *, relaxed: bool = False) -> T: ...


class SqliteAuditLog:
    """The audit trail of one SQLite store. ``journal`` is set while the store is open (None in memory)."""

    def __init__(self, store: _Backend, rules: ChainRules) -> None:
        self._store = store
        self.rules = rules
        self.journal: AuditJournal | None = None

    def journal_reads(self, lines: bytes) -> bool:
        """Append read-audit lines to the journal (journal.py); False when this store keeps none (in
        memory): then commit them as a unit instead."""
        journal = self.journal
        if journal is None:
            return False
        journal.append(lines)
        return True

    async def sync(self) -> None:
        """Chain every read journaled so far, before audit data is read: an empty relaxed unit makes the
        writer ingest the journal first."""
        if self.journal is not None and self.journal.pending:
            await self._store.transaction(lambda view: None, relaxed=True)

    async def events(self, patient: str | None, limit: int, before: int | None = None
                     ) -> list[tuple[int, dict[str, Any]]]:
        await self.sync()
        return await self._store.run_read(lambda conn: audit_rows(conn, self.rules, patient, limit, before))

    async def block_events(self, block_seq: int, patient: str) -> list[dict[str, Any]]:
        return await self._store.run_read(lambda conn: block_events(conn, self.rules, block_seq, patient))

    async def event(self, event_id: str) -> tuple[int, bytes] | None:
        await self.sync()
        return await self._store.run_read(lambda conn: audit_event_row(conn, self.rules, event_id))

    async def verify(self, anchors: Mapping[int, str] | None = None) -> ChainReport:
        await self.sync()
        return await self._store.run_read(lambda conn: verify_connection(conn, self.rules, anchors))
