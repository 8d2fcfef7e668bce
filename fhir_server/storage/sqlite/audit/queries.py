"""Reading the SQLite store's audit trail: events newest first (all, or a patient's), one read block's
events, one event by id. Read blocks are rendered by the injected ``ChainRules``."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import orjson

from fhir_server.storage.audit import ChainRules
from fhir_server.storage.sqlite.audit.chain import block_data, special_row
from fhir_server.storage.sqlite.audit.index import index_mark

BY_PATIENT_SQL = "SELECT data FROM audit_chain WHERE patient = ? ORDER BY recorded DESC, seq DESC LIMIT ?"


def templates(conn: sqlite3.Connection) -> Callable[[int], bytes]:
    """Read templates by chain seq, each fetched once per query."""
    cache: dict[int, bytes] = {}

    def template(seq: int) -> bytes:
        if seq not in cache:
            cache[seq] = special_row(conn, "t", seq) or b"{}"
        return cache[seq]

    return template


def block_events(conn: sqlite3.Connection, rules: ChainRules, block_seq: int, patient: str) -> list[dict[str, Any]]:
    """The events of read block ``block_seq`` about ``patient``, oldest first."""
    data = special_row(conn, "r", block_seq)
    if data is None:
        return []
    return [event for _, event in reversed(list(rules.block(block_seq, data, templates(conn)).events(patient)))]


def audit_event_row(conn: sqlite3.Connection, rules: ChainRules, event_id: str) -> tuple[int, bytes] | None:
    found = rules.block_event_id(event_id)
    if found is not None:  # an event of a read block: r{seq}-{index}
        seq, index = found
        block = special_row(conn, "r", seq)
        if block is None:
            return None
        view = rules.block(seq, block, templates(conn))
        if index >= len(view):
            return None
        return rules.position(seq, index), orjson.dumps(view.event(index))
    row = conn.execute("SELECT seq, data FROM audit_chain WHERE event_id = ?", (event_id,)).fetchone()
    if row is None or event_id in (f"t{row[0]}", f"r{row[0]}"):  # templates and whole blocks are not events
        return None
    return rules.position(int(row[0])), bytes(row[1])


def audit_rows(conn: sqlite3.Connection, rules: ChainRules, patient: str | None, limit: int, before: int | None
               ) -> list[tuple[int, dict[str, Any]]]:
    """Newest first, ``limit`` events below position ``before``: single-event rows and the records
    of read blocks (for a patient: rows with that patient, and blocks indexed for them)."""
    found: list[tuple[int, dict[str, Any]]] = []
    template = templates(conn)
    below = rules.seq_of(before) + 1 if before is not None else None  # rows up to the cursor's own row
    while len(found) < limit:
        rows = _chain_rows(conn, rules, patient, limit, below)
        for seq, event_id, data in rows:
            if event_id == f"r{seq}":
                events = rules.block(seq, block_data(data), template).events(patient)
            elif event_id == f"t{seq}":
                continue  # a read template: part of the events of the blocks that name it, not one itself
            else:
                events = iter([(rules.position(seq), orjson.loads(bytes(data)))])
            for pos, event in events:
                if before is None or pos < before:
                    found.append((pos, event))
        if len(rows) < limit:
            break
        below = rows[-1][0]
    return found[:limit]


def _chain_rows(conn: sqlite3.Connection, rules: ChainRules, patient: str | None, limit: int, below: int | None
                ) -> list[tuple[int, str, bytes]]:
    """Up to ``limit`` chain rows below seq ``below``, newest first; for a patient, the rows that
    hold an event about them."""
    cap = "seq < ?" if below is not None else "1 = 1"
    cap_args: list[Any] = [below] if below is not None else []
    if patient is None:
        sql = f"SELECT seq, event_id, data FROM audit_chain WHERE {cap} ORDER BY seq DESC LIMIT ?"
        return conn.execute(sql, [*cap_args, limit]).fetchall()
    seqs = _patient_seqs(conn, rules, patient, limit, below)
    if not seqs:
        return []
    marks = ",".join("?" * len(seqs))
    return conn.execute(f"SELECT seq, event_id, data FROM audit_chain WHERE seq IN ({marks}) ORDER BY seq DESC",
                        seqs).fetchall()


def _patient_seqs(conn: sqlite3.Connection, rules: ChainRules, patient: str, limit: int, below: int | None
                  ) -> list[int]:
    """Newest ``limit`` seqs below ``below`` of rows about ``patient``: single events by the indexed
    column, read blocks through ``audit_patient_blocks`` up to its mark, and above it by scanning."""
    top = below if below is not None else 2**62
    seqs = [int(r[0]) for r in conn.execute(
        "SELECT seq FROM audit_chain WHERE patient = ? AND seq < ? ORDER BY seq DESC LIMIT ?", (patient, top, limit))]
    mark = index_mark(conn)
    needle = orjson.dumps(patient.removeprefix("Patient/")) + b"]"
    for seq, data in conn.execute("SELECT seq, data FROM audit_chain WHERE seq > ? AND seq < ? "
                                  "AND event_id = 'r' || seq", (mark, top)):
        data = block_data(data)
        if needle in data and f"Patient/{patient.removeprefix('Patient/')}" in rules.block_patients(data):
            seqs.append(int(seq))
    found = 0
    for (listed,) in conn.execute("SELECT seqs FROM audit_patient_blocks WHERE patient = ? AND first_seq < ? "
                                  "ORDER BY last_seq DESC", (patient, top)):
        fits = [int(x) for x in str(listed).split() if int(x) < top]
        seqs += fits
        found += len(fits)
        if found >= limit:
            break
    return sorted(set(seqs), reverse=True)[:limit]


def events_for_patient(conn: sqlite3.Connection, patient_id: str, limit: int = 1000) -> list[dict[str, Any]]:
    """The latest single AuditEvents about ``Patient/{patient_id}`` by the indexed column (read blocks
    excluded: ``audit_rows`` has those too)."""
    rows = conn.execute(BY_PATIENT_SQL, (f"Patient/{patient_id}", limit)).fetchall()
    return [orjson.loads(bytes(row[0])) for row in rows]
