"""``audit_patient_blocks``: which read blocks hold reads of which patient, so a patient's access log
does not scan the chain.

The index trails the chain on purpose: a row per patient per indexing round, instead of one per read,
keeps a read's audit cost flat; blocks above the mark (``kv`` key ``INDEX_MARK``) are found by scanning
them. The writer indexes in rounds (writer.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping

from fhir_server.storage.audit import ChainRules
from fhir_server.storage.sqlite.audit.chain import block_data

#: How far ``audit_patient_blocks`` covers the read blocks (kv key; every block up to it is indexed).
INDEX_MARK = "audit-patient-index"


def index_mark(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM kv WHERE key = ?", (INDEX_MARK,)).fetchone()
    return int(row[0]) if row else 0


def index_blocks(conn: sqlite3.Connection, blocks: Mapping[int, Iterable[str]], up_to: int) -> None:
    """Index read blocks by patient, inside the caller's transaction: one row per patient listing
    that patient's blocks, and the mark moved to ``up_to`` (every block up to it is then indexed)."""
    by_patient: dict[str, list[int]] = {}
    for seq, patients in sorted(blocks.items()):
        for patient in patients:
            by_patient.setdefault(patient, []).append(seq)
    conn.executemany(
        "INSERT INTO audit_patient_blocks (patient, last_seq, first_seq, seqs) VALUES (?, ?, ?, ?)",
        [(p, seqs[-1], seqs[0], " ".join(map(str, seqs))) for p, seqs in sorted(by_patient.items())])
    conn.execute("INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                 (INDEX_MARK, str(up_to)))


def unindexed_blocks(conn: sqlite3.Connection, rules: ChainRules, after: int) -> dict[int, list[str]]:
    """seq -> patients of the read blocks above the index mark (to index them after a restart)."""
    rows = conn.execute("SELECT seq, data FROM audit_chain WHERE seq > ? AND event_id = 'r' || seq ORDER BY seq",
                        (after,))
    return {int(seq): rules.block_patients(block_data(data)) for seq, data in rows}


def indexed_blocks(conn: sqlite3.Connection) -> dict[int, list[str]]:
    """seq -> patients, as ``audit_patient_blocks`` lists them."""
    found: dict[int, list[str]] = {}
    for patient, seqs in conn.execute("SELECT patient, seqs FROM audit_patient_blocks ORDER BY patient, last_seq"):
        for seq in str(seqs).split():
            found.setdefault(int(seq), []).append(str(patient))
    return {seq: sorted(patients) for seq, patients in found.items()}
