"""The durable outbox of the SQLite backend (architecture.md, core decision 7).

Rows are written by write units in the same transaction as the change they announce; workers claim
due rows, deliver them, and record the outcome through further write units. ``partition`` groups
rows for ordered or digested delivery (a patient, for notifications).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from fhir_server.storage.protocols import OutboxItem

OUTBOX_DDL: list[str] = [
    """CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY,
        topic TEXT NOT NULL,
        partition TEXT,
        key TEXT NOT NULL,
        payload BLOB NOT NULL,
        created TEXT NOT NULL,
        available_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL DEFAULT 'pending',
        last_error TEXT,
        delivered_at TEXT,
        UNIQUE (topic, key))""",
    "CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, topic, available_at)",
    "CREATE INDEX IF NOT EXISTS outbox_partition ON outbox (topic, partition, created)",
]

COLUMNS = "id, topic, partition, key, payload, created, available_at, attempts, status, last_error, delivered_at"


def item(row: tuple[Any, ...]) -> OutboxItem:
    return OutboxItem(row[0], row[1], row[2], row[3], bytes(row[4]), row[5], row[6], row[7], row[8], row[9], row[10])


def enqueue(conn: sqlite3.Connection, topic: str, partition: str | None, key: str, payload: bytes,
            now: str) -> None:
    # The idempotency key makes a retried unit harmless: the same message is never queued twice.
    conn.execute(
        "INSERT OR IGNORE INTO outbox (topic, partition, key, payload, created, available_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (topic, partition, key, payload, now, now),
    )


def due(conn: sqlite3.Connection, topic: str, now: str, limit: int) -> list[OutboxItem]:
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM outbox WHERE status = 'pending' AND topic = ? AND available_at <= ? "
        "ORDER BY id LIMIT ?",
        (topic, now, limit),
    ).fetchall()
    return [item(r) for r in rows]


def by_partition(conn: sqlite3.Connection, topic: str, partition: str, limit: int, before_id: int | None
                 ) -> list[OutboxItem]:
    args: list[Any] = [topic, partition]
    where = "topic = ? AND partition = ?"
    if before_id is not None:
        where += " AND id < ?"
        args.append(before_id)
    rows = conn.execute(f"SELECT {COLUMNS} FROM outbox WHERE {where} ORDER BY id DESC LIMIT ?",
                        [*args, limit]).fetchall()
    return [item(r) for r in rows]


def by_status(conn: sqlite3.Connection, topic: str, status: str, limit: int, before_id: int | None
              ) -> list[OutboxItem]:
    """Messages of a topic in one status, newest first (the ``outbox_due`` index leads with both)."""
    args: list[Any] = [status, topic]
    where = "status = ? AND topic = ?"
    if before_id is not None:
        where += " AND id < ?"
        args.append(before_id)
    rows = conn.execute(f"SELECT {COLUMNS} FROM outbox WHERE {where} ORDER BY id DESC LIMIT ?",
                        [*args, limit]).fetchall()
    return [item(r) for r in rows]


STATUSES = ("dead", "delivered", "pending")


def counts(conn: sqlite3.Connection, topics: list[str]) -> list[tuple[str, str, int]]:
    """(topic, status, messages) of each topic and status that has any: one count per pair over its range of the
    ``outbox_due`` index (status, topic, ...), so no table row is read and no other topic's range is scanned."""
    found = []
    for topic in sorted(set(topics)):
        for status in STATUSES:
            row = conn.execute("SELECT COUNT(*) FROM outbox WHERE status = ? AND topic = ?", [status, topic]).fetchone()
            if row and int(row[0]):
                found.append((topic, status, int(row[0])))
    return found


def settle(conn: sqlite3.Connection, ids: list[int], status: str, now: str, error: str | None,
           retry_at: str | None) -> None:
    if status == "delivered":
        conn.executemany("UPDATE outbox SET status = 'delivered', delivered_at = ?, attempts = attempts + 1 "
                         "WHERE id = ?", [(now, i) for i in ids])
    elif status == "retry":
        conn.executemany("UPDATE outbox SET attempts = attempts + 1, last_error = ?, available_at = ? WHERE id = ?",
                         [(error, retry_at, i) for i in ids])
    else:
        conn.executemany("UPDATE outbox SET status = 'dead', attempts = attempts + 1, last_error = ? WHERE id = ?",
                         [(error, i) for i in ids])
