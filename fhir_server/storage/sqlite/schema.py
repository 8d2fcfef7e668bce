"""SQLite schema of the embedded store: current versions, history, and (from search/) index tables."""

from __future__ import annotations

import sqlite3

from fhir_server.storage.audit import ChainRules
from fhir_server.storage.sqlite.audit.schema import create_audit_schema
from fhir_server.storage.sqlite.outbox import OUTBOX_DDL

BASE_DDL: list[str] = [
    """CREATE TABLE IF NOT EXISTS resources (
        rid INTEGER PRIMARY KEY,
        type TEXT NOT NULL,
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        last_updated TEXT NOT NULL,
        deleted INTEGER NOT NULL,
        data BLOB,
        patients TEXT,
        UNIQUE (type, id))""",
    """CREATE TABLE IF NOT EXISTS history (
        rid INTEGER NOT NULL,
        version INTEGER NOT NULL,
        type TEXT NOT NULL,
        id TEXT NOT NULL,
        last_updated TEXT NOT NULL,
        deleted INTEGER NOT NULL,
        method TEXT NOT NULL,
        data BLOB,
        seq INTEGER NOT NULL,
        patients TEXT,
        PRIMARY KEY (rid, version)) WITHOUT ROWID""",
    "CREATE UNIQUE INDEX IF NOT EXISTS history_seq ON history (seq)",
    "CREATE INDEX IF NOT EXISTS history_type_seq ON history (type, seq)",
    "CREATE INDEX IF NOT EXISTS resources_type_updated ON resources (type, last_updated)",
    """CREATE TABLE IF NOT EXISTS kv (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL)""",
    # background jobs (bulk export ...): one JSON document per job, written through write units
    """CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        updated TEXT NOT NULL,
        data BLOB NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS jobs_kind_status ON jobs (kind, status)",
]


def connect(path: str, *, readonly: bool = False, synchronous_full: bool = True) -> sqlite3.Connection:
    """Open a connection with the pragmas every connection of the store uses."""
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: an acknowledged commit survives power loss too; NORMAL survives a killed process (WAL).
    conn.execute(f"PRAGMA synchronous={'FULL' if synchronous_full else 'NORMAL'}")
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.execute("PRAGMA cache_size=-65536")
    conn.execute("PRAGMA mmap_size=4294967296")  # map up to 4 GiB: index probes of large stores skip read() copies
    return conn


def create_schema(conn: sqlite3.Connection, extra_ddl: list[str], rules: ChainRules) -> None:
    """The store's tables, the search index tables (``extra_ddl``) and the audit tables (whose trigger
    knows the chain's genesis hash, ``rules.genesis``)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for stmt in BASE_DDL + OUTBOX_DDL + extra_ddl:
            conn.execute(stmt)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    for table in ("resources", "history"):
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if "patients" not in columns:  # a database from before the column: NULL means "parse to know"
            conn.execute(f"ALTER TABLE {table} ADD COLUMN patients TEXT")
    create_audit_schema(conn, rules.genesis)
