"""The tamper-evident audit hash chain: its rules (security/audit/chain.py), the SQLite table's SQL-level
immutability (storage/sqlite/audit/) and detection of every edit."""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_server.security.audit import (
    GENESIS_HASH,
    AuditTarget,
    canonical_bytes,
    link,
    make_row,
    rest_event,
    verify_chain,
)
from fhir_server.security.audit.rules import CHAIN_RULES
from fhir_server.security.cli import register
from fhir_server.security.context import RequestContext
from fhir_server.storage.sqlite.audit.chain import append_events, read_rows
from fhir_server.storage.sqlite.audit.queries import events_for_patient
from fhir_server.storage.sqlite.audit.schema import chain_ddl
from fhir_server.storage.sqlite.audit.verify import verify_database

DOCTOR = RequestContext(fhir_user="Practitioner/1", role="practitioner", authenticated=True)
Row = tuple[Any, ...]


def events(count: int) -> list[dict[str, Any]]:
    return [
        rest_event(DOCTOR, AuditTarget("read", "Observation", f"o{i}", "1", patient_id=str(i % 3)), recorded=1e9 + i)
        for i in range(count)
    ]


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "audit.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(chain_ddl(GENESIS_HASH))
    with conn:
        append_events(conn, CHAIN_RULES, events(5))
    with conn:
        append_events(conn, CHAIN_RULES, events(3))
    conn.close()
    return path


def rows_of(path: Path) -> list[Row]:
    conn = sqlite3.connect(path)
    try:
        return [tuple(row) for row in read_rows(conn)]
    finally:
        conn.close()


def test_link_is_sha256_over_previous_hash_newline_and_event_bytes() -> None:
    data = canonical_bytes({"b": 1, "a": [2]})
    assert data == b'{"a":[2],"b":1}'
    assert link(GENESIS_HASH, data) == hashlib.sha256(GENESIS_HASH.encode() + b"\n" + data).hexdigest()


@pytest.mark.req("AC-14")
def test_appended_batches_form_one_intact_chain(database: Path) -> None:
    report = verify_database(str(database), CHAIN_RULES)
    assert report.ok and report.rows_checked == 8 and report.head_seq == 8
    assert report.head_hash == rows_of(database)[-1][6]


@pytest.mark.req("AC-14")
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_chain SET patient = 'Patient/99' WHERE seq = 2",
        "DELETE FROM audit_chain WHERE seq = 8",
        "INSERT INTO audit_chain VALUES (4, 'x', 'r', NULL, x'00', 'p', 'h')",
        "INSERT INTO audit_chain VALUES (9, 'x', 'r', NULL, x'00', 'not-the-head', 'h')",
    ],
)
def test_sql_triggers_make_the_table_append_only(database: Path, statement: str) -> None:
    conn = sqlite3.connect(database)
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(statement)
    conn.close()


def _edit_data(rows: list[Row], k: int) -> None:
    event = json.loads(bytes(rows[k][4]))
    event["outcome"] = "4"
    rows[k] = (*rows[k][:4], canonical_bytes(event), *rows[k][5:])


def _edit_and_rehash(rows: list[Row], k: int) -> None:
    _edit_data(rows, k)
    rows[k] = (*rows[k][:6], link(rows[k][5], bytes(rows[k][4])))


def _edit_column(rows: list[Row], k: int) -> None:
    rows[k] = (*rows[k][:3], "Patient/99", *rows[k][4:])


def _edit_prev_hash(rows: list[Row], k: int) -> None:
    rows[k] = (*rows[k][:5], "f" * 64, rows[k][6])


def _delete(rows: list[Row], k: int) -> None:
    del rows[k]


def _swap(rows: list[Row], k: int) -> None:
    j = k + 1 if k + 1 < len(rows) else k - 1
    first, second = rows[k], rows[j]
    rows[k], rows[j] = (first[0], *second[1:]), (second[0], *first[1:])


def _insert(rows: list[Row], k: int) -> None:
    forged = canonical_bytes(events(1)[0])
    rows.insert(k, (rows[k][0], "forged", "2001-01-01", None, forged, rows[k][5], link(rows[k][5], forged)))


MUTATIONS: dict[str, Callable[[list[Row], int], None]] = {
    "edit-data": _edit_data,
    "edit-data-and-rehash": _edit_and_rehash,
    "edit-indexed-column": _edit_column,
    "edit-prev-hash": _edit_prev_hash,
    "delete": _delete,
    "swap": _swap,
    "insert": _insert,
}


@pytest.mark.req("AC-14")
@pytest.mark.req("TM-13")
@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_verify_detects_every_single_row_tampering_at_every_position(database: Path, mutation: str) -> None:
    original = rows_of(database)
    head = (original[-1][0], original[-1][6])
    for k in range(len(original)):
        rows = list(original)
        MUTATIONS[mutation](rows, k)
        report = verify_chain(rows, anchors={head[0]: head[1]})
        assert not report.ok, f"{mutation} at row {k + 1} went unnoticed"
        assert report.first_broken_seq is not None and report.first_broken_seq <= max(k + 2, len(original))


@pytest.mark.req("AC-14")
@settings(max_examples=200, deadline=None)
@given(
    mutation=st.sampled_from(sorted(MUTATIONS)),
    length=st.integers(1, 12),
    position=st.integers(0, 11),
)
def test_any_tampering_of_any_chain_is_detected(mutation: str, length: int, position: int) -> None:
    rows: list[Row] = []
    prev = GENESIS_HASH
    for seq, event in enumerate(events(length), start=1):
        rows.append(make_row(seq, prev, event).as_tuple())
        prev = rows[-1][6]
    assert verify_chain(rows).ok
    anchors = {rows[-1][0]: rows[-1][6]}
    if mutation == "swap" and length == 1:
        return
    MUTATIONS[mutation](rows, position % length)
    assert not verify_chain(rows, anchors=anchors).ok


def test_tail_truncation_is_caught_by_an_anchor_only(database: Path) -> None:
    rows = rows_of(database)[:-2]
    assert verify_chain(rows).ok  # a hash chain alone cannot see a cut tail
    report = verify_chain(rows, anchors={8: rows_of(database)[-1][6]})
    assert not report.ok and report.first_broken_seq == 8 and "truncated" in (report.problem or "")


def test_report_pinpoints_the_first_broken_row(database: Path) -> None:
    rows = rows_of(database)
    _edit_data(rows, 3)
    report = verify_chain(rows)
    assert (report.first_broken_seq, report.head_seq, report.rows_checked) == (4, 3, 3)
    assert "changed" in (report.problem or "")


def test_events_for_patient_reads_the_indexed_column(database: Path) -> None:
    conn = sqlite3.connect(database)
    found = events_for_patient(conn, "1")
    conn.close()
    assert found and all(e["entity"][-1]["what"]["reference"] == "Patient/1" for e in found)


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kzfhir")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


@pytest.mark.req("AC-14")
def test_kzfhir_audit_verify_exit_codes(database: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(["audit", "verify", "--database", str(database)]) == 0
    assert "intact: 8 events" in capsys.readouterr().out
    head = rows_of(database)[-1][6]
    assert _cli(["audit", "verify", "--database", str(database), "--anchor", f"8:{head}", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    conn = sqlite3.connect(database)
    conn.executescript("DROP TRIGGER audit_chain_no_update; UPDATE audit_chain SET recorded = 'x' WHERE seq = 5;")
    conn.close()
    assert _cli(["audit", "verify", "--database", str(database)]) == 1
    assert "BROKEN at seq 5" in capsys.readouterr().out
    assert _cli(["audit", "verify", "--database", str(tmp_path / "missing.sqlite")]) == 2
