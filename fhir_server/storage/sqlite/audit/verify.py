"""Verification of a SQLite store's audit trail: the chain (by the injected ``ChainRules``) and the
patients index of its read blocks, against anchors recorded elsewhere. ``kzfhir audit verify`` runs it
on a database file opened read-only; ``SqliteAuditLog.verify`` on an open store."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from fhir_server.storage.audit import ChainReport, ChainRules
from fhir_server.storage.sqlite.audit.chain import read_rows
from fhir_server.storage.sqlite.audit.index import index_mark, indexed_blocks


def _checked_rows(rows: Iterable[tuple[Any, ...]], rules: ChainRules, indexed: dict[int, list[str]], mark: int,
                  problems: list[tuple[int, str]]) -> Iterator[tuple[Any, ...]]:
    """The rows, noting the first read block (up to the index mark) whose indexed patients differ
    from its records: a removed index row would hide reads from the patient's access log."""
    for row in rows:
        seq, event_id, data = int(row[0]), str(row[1]), row[4]
        if event_id == f"r{seq}" and seq <= mark:
            try:
                wanted: list[str] | None = rules.block_patients(bytes(data))
            except ValueError:
                wanted = None  # the chain's own check reports the row itself
            if wanted is not None and indexed.pop(seq, []) != wanted and not problems:
                problems.append((seq, "audit_patient_blocks disagrees with the read block's patients"))
        yield row


def verify_connection(conn: sqlite3.Connection, rules: ChainRules, anchors: Mapping[int, str] | None = None
                      ) -> ChainReport:
    """Verify ``audit_chain`` and ``audit_patient_blocks`` as one snapshot (one read transaction:
    the writer may commit meanwhile)."""
    conn.execute("BEGIN")
    try:
        indexed = indexed_blocks(conn)
        problems: list[tuple[int, str]] = []
        mark = index_mark(conn) if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'kv'").fetchone() else 0
        report = rules.verify(_checked_rows(read_rows(conn), rules, indexed, mark, problems), anchors)
    finally:
        conn.execute("COMMIT")
    if indexed and not problems:
        seq = min(indexed)
        problems.append((seq, "audit_patient_blocks names a read block that does not exist or is not indexed yet"))
    if report.ok and problems:
        seq, problem = problems[0]
        return ChainReport(False, report.rows_checked, report.head_seq, report.head_hash, seq, problem)
    return report


def verify_database(path: str, rules: ChainRules, anchors: Mapping[int, str] | None = None) -> ChainReport:
    """Verify the audit trail of a SQLite database file, opened read-only."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        return verify_connection(conn, rules, anchors)
    finally:
        conn.close()
