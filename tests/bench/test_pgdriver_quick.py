"""``bench_pgdriver`` in quick mode (issue 11 §2: asyncpg measured against psycopg 3): both drivers run each of
the server's hot statements on a PostgreSQL the bench starts, and every figure is reported; no timed assertion."""

from __future__ import annotations

import pytest

from bench import bench_pgdriver

pytestmark = pytest.mark.slow


def test_both_drivers_run_every_statement_and_are_measured() -> None:
    figures = bench_pgdriver.measure(300)
    cases = {f.case for f in figures}
    assert len(cases) == 3
    assert {(f.case, f.driver) for f in figures} == {(c, d) for c in cases for d in ("psycopg 3", "asyncpg")}
    for figure in figures:
        assert figure.statements == 300 and figure.rate > 0, figure
        assert figure.client_us > 0 and figure.server_us >= 0, figure  # /proc counts in 10 ms ticks


def test_placeholders_are_numbered_for_asyncpg() -> None:
    assert bench_pgdriver._dollar("SELECT %s, %s::text[] WHERE x = %s") == "SELECT $1, $2::text[] WHERE x = $3"
