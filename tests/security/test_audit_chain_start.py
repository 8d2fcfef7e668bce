"""Verification that starts after an archived prefix of the chain (``ChainStart``: PostgreSQL's archived
months, storage/postgres/audit.py): the rest must continue the prefix exactly, and anchors inside the
prefix can only be checked at its last row."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.security.audit import GENESIS_HASH, make_row, verify_chain
from fhir_server.storage.audit import ChainStart
from tests.security.test_audit_chain import events

pytestmark = pytest.mark.req("AC-14")


def _chain(count: int) -> list[tuple[Any, ...]]:
    rows, prev = [], GENESIS_HASH
    for seq, event in enumerate(events(count), start=1):
        row = make_row(seq, prev, event)
        rows.append(row.as_tuple())
        prev = row.hash
    return rows


def test_the_rows_after_an_archived_prefix_verify_from_its_last_hash() -> None:
    rows = _chain(8)
    start = ChainStart(5, rows[4][6])
    report = verify_chain(rows[5:], None, start)
    assert report.ok and report.rows_checked == 3 and report.head_seq == 8 and report.head_hash == rows[7][6]
    assert verify_chain(rows[5:], {5: rows[4][6], 7: rows[6][6]}, start).ok
    assert verify_chain(rows[5:], {2: "f" * 64}, start).ok  # inside the prefix: checked when it was archived


@pytest.mark.parametrize(("start", "broken_at"), [
    (ChainStart(4, "0" * 64), 6),  # a row missing between the prefix and the rest
    (ChainStart(5, "e" * 64), 6),  # a prefix whose last hash the rest does not link to
])
def test_a_rest_that_does_not_continue_the_prefix_is_broken(start: ChainStart, broken_at: int) -> None:
    rows = _chain(8)
    report = verify_chain(rows[-3:], None, start)
    assert not report.ok and report.first_broken_seq == broken_at


def test_an_anchor_at_the_prefixs_end_that_differs_is_a_rewrite() -> None:
    rows = _chain(8)
    report = verify_chain(rows[5:], {5: "a" * 64}, ChainStart(5, rows[4][6]))
    assert not report.ok and report.first_broken_seq == 5 and "anchor" in (report.problem or "")
