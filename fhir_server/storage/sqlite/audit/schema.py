"""The audit tables of the SQLite store: ``audit_chain`` (the hash chain) and ``audit_patient_blocks``.

Triggers make both append-only at the SQL level (UPDATE/DELETE abort, an INSERT into the chain must
extend its head). They stop mistakes and SQL-level tampering through the application; they do not stop
someone with write access to the database file, who can drop triggers and rewrite rows: that is what
verification (verify.py) and anchors are for (security/audit/chain.py).
"""

from __future__ import annotations

import sqlite3

_DDL = """
CREATE TABLE IF NOT EXISTS audit_chain (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    recorded TEXT NOT NULL,
    patient TEXT,
    data BLOB NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_chain_by_patient ON audit_chain (patient, recorded);
CREATE TRIGGER IF NOT EXISTS audit_chain_no_update BEFORE UPDATE ON audit_chain
BEGIN SELECT RAISE(ABORT, 'audit_chain is append-only (AC-14)'); END;
CREATE TRIGGER IF NOT EXISTS audit_chain_no_delete BEFORE DELETE ON audit_chain
BEGIN SELECT RAISE(ABORT, 'audit_chain is append-only (AC-14)'); END;
CREATE TRIGGER IF NOT EXISTS audit_chain_extend_only BEFORE INSERT ON audit_chain
WHEN NEW.seq IS NOT (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_chain)
  OR NEW.prev_hash IS NOT COALESCE(
       (SELECT hash FROM audit_chain ORDER BY seq DESC LIMIT 1), '{genesis}')
BEGIN SELECT RAISE(ABORT, 'audit_chain rows must extend the chain'); END;
CREATE TABLE IF NOT EXISTS audit_patient_blocks (
    patient TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    seqs TEXT NOT NULL,
    PRIMARY KEY (patient, last_seq)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS audit_patient_blocks_no_update BEFORE UPDATE ON audit_patient_blocks
BEGIN SELECT RAISE(ABORT, 'audit_patient_blocks is append-only (AC-14)'); END;
CREATE TRIGGER IF NOT EXISTS audit_patient_blocks_no_delete BEFORE DELETE ON audit_patient_blocks
BEGIN SELECT RAISE(ABORT, 'audit_patient_blocks is append-only (AC-14)'); END;
"""


def chain_ddl(genesis: str) -> str:
    """The audit tables' DDL; ``genesis`` is the first row's ``prev_hash`` (``ChainRules.genesis``)."""
    if not genesis.isalnum():
        raise ValueError("the genesis hash must be hexadecimal")  # it is spliced into a trigger
    return _DDL.replace("{genesis}", genesis)


def create_audit_schema(conn: sqlite3.Connection, genesis: str) -> None:
    """Create the audit tables (IF NOT EXISTS throughout). The DDL holds triggers (BEGIN ... END): it
    runs as a script."""
    conn.executescript(chain_ddl(genesis))
