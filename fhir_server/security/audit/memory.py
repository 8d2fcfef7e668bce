"""An in-memory AuditSink that keeps the same hash chain as the SQLite table: the test double."""

from __future__ import annotations

from typing import Any

import orjson

from fhir_server.security.audit.chain import GENESIS_HASH, ChainReport, ChainRow, make_row, verify_chain


class MemoryAuditSink:
    """Chains every recorded event in memory; ``verify()`` checks it like the real table."""

    def __init__(self) -> None:
        self.rows: list[ChainRow] = []

    async def record(self, event: dict[str, Any]) -> None:
        prev = self.rows[-1].hash if self.rows else GENESIS_HASH
        self.rows.append(make_row(len(self.rows) + 1, prev, event))

    @property
    def events(self) -> list[dict[str, Any]]:
        return [orjson.loads(row.data) for row in self.rows]

    def verify(self) -> ChainReport:
        return verify_chain(row.as_tuple() for row in self.rows)
