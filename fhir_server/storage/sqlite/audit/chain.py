"""Appending to ``audit_chain``, inside the writer's open transaction: AuditEvents, read blocks and
read templates (the ``AuditTx`` of the SQLite store). How a row links and what it holds is the
injected ``ChainRules``'; here the head is read and rows inserted."""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from fhir_server.storage.audit import ChainRowTuple, ChainRules

INSERT_SQL = (
    "INSERT INTO audit_chain (seq, event_id, recorded, patient, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
HEAD_SQL = "SELECT seq, hash FROM audit_chain ORDER BY seq DESC LIMIT 1"
SELECT_SQL = "SELECT seq, event_id, recorded, patient, data, prev_hash, hash FROM audit_chain ORDER BY seq"


def append_events(conn: sqlite3.Connection, rules: ChainRules, events: Iterable[Mapping[str, Any]]
                  ) -> list[ChainRowTuple]:
    """Append events to the chain inside the caller's open transaction on ``conn``.

    Called from the store's single writer in the same transaction as the data change (writes)
    or as a batched flush (reads), so the rows commit atomically with everything else.
    """
    head = conn.execute(HEAD_SQL).fetchone()
    seq, prev = (int(head[0]), str(head[1])) if head else (0, rules.genesis)
    rows = []
    for event in events:
        seq += 1
        row = rules.event_row(seq, prev, event)
        rows.append(row)
        prev = row[6]
    conn.executemany(INSERT_SQL, rows)
    return rows


# Read blocks are stored zlib-compressed (issue 12: the bytes an audited read costs). A block repeats its
# caller templates' ids and its records' id prefixes, and compresses about 6-fold; the chain hash is over
# the uncompressed bytes (``rules.link``), so verification does not depend on the compressor. A stored
# value that starts with zlib's header byte (0x78) is compressed: JSON never starts with "x", so rows
# written before compression, events and templates read as they are.
_ZLIB_HEADER = b"\x78"
BLOCK_LEVEL = 6


def block_data(stored: Any) -> bytes:
    """The bytes a chain row holds, as chained (a compressed read block decompressed)."""
    raw = bytes(stored)
    return zlib.decompress(raw) if raw[:1] == _ZLIB_HEADER else raw


def append_special(conn: sqlite3.Connection, rules: ChainRules, prefix: str, data: bytes, recorded: str) -> int:
    """Append a read block (``prefix`` "r", stored compressed) or a read template ("t") as a chain row inside
    the caller's open transaction; returns the row's seq (its ``event_id`` is ``{prefix}{seq}``)."""
    head = conn.execute(HEAD_SQL).fetchone()
    seq, prev = (int(head[0]) + 1, str(head[1])) if head else (1, rules.genesis)
    stored = zlib.compress(data, BLOCK_LEVEL) if prefix == "r" else data
    conn.execute(INSERT_SQL, (seq, f"{prefix}{seq}", recorded, None, stored, prev, rules.link(prev, data)))
    return seq


def special_row(conn: sqlite3.Connection, prefix: str, seq: int) -> bytes | None:
    """The data of read block ``r{seq}`` (``prefix`` "r") or read template ``t{seq}`` ("t"), if any."""
    row = conn.execute("SELECT data FROM audit_chain WHERE seq = ? AND event_id = ?",
                       (seq, f"{prefix}{seq}")).fetchone()
    return block_data(row[0]) if row else None


def decoded(rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """``SELECT_SQL`` rows with the data as chained (``block_data``): what verification hashes."""
    for seq, event_id, recorded, patient, data, prev, digest in rows:
        yield seq, event_id, recorded, patient, block_data(data), prev, digest


def read_rows(conn: sqlite3.Connection) -> Iterator[tuple[Any, ...]]:
    """All chain rows in seq order, streamed, with the data as chained."""
    yield from decoded(conn.execute(SELECT_SQL))


class SqliteAuditTx:
    """``storage.audit.AuditTx`` on the writer's connection: rows join the unit's SAVEPOINT."""

    __slots__ = ("_conn", "_rules", "read_blocks")

    def __init__(self, conn: sqlite3.Connection, rules: ChainRules) -> None:
        self._conn = conn
        self._rules = rules
        self.read_blocks: dict[int, list[str]] = {}  # seq -> patients, for the writer's block index

    def append_events(self, events: list[dict[str, Any]]) -> None:
        if events:
            append_events(self._conn, self._rules, events)

    def append_read_block(self, data: bytes, recorded: str, patients: list[str]) -> int:
        seq = append_special(self._conn, self._rules, "r", data, recorded)
        self.read_blocks[seq] = patients
        return seq

    def append_template(self, data: bytes, recorded: str) -> int:
        return append_special(self._conn, self._rules, "t", data, recorded)
