"""``bench_postgres`` in quick mode (issue 11's `make bench` figures): SQLite and PostgreSQL with 1 and 2
workers, security off and on, and the search at 1x and 2x, on a PostgreSQL the bench starts. Asserts every
case is reported with positive figures; no timed assertion."""

from __future__ import annotations

import pytest

from bench import bench_postgres

pytestmark = pytest.mark.slow


def test_quick_postgres_bench_reports_every_case() -> None:
    lines: list[str] = []
    opts = bench_postgres.PgOptions.quick()
    results = bench_postgres.measure(opts, say=lines.append)
    expected = {("SQLite", 1, False), ("SQLite", 1, True)} | {
        ("PostgreSQL", w, s) for w in opts.workers for s in (False, True)}
    assert set(results.cases) == expected
    for key, figures in results.cases.items():
        assert figures["ingest_failed"] == 0, (key, figures["ingest_errors"])
        assert figures["ingested"] > 0 and figures["ingest_rps"] > 0, key
        assert figures["read_rps"] > 0 and figures["read_errors"] == 0, (key, figures)
    assert set(results.search) == {1, opts.search_scale}
    for search in results.search.values():
        assert search["matches"] > 0 and search["errors"] == 0 and search["p95_ms"] > 0
    assert results.search[opts.search_scale]["resources"] > results.search[1]["resources"]
    text = "\n".join(bench_postgres.report(results))
    assert "PostgreSQL 2 workers / 1" in text and "search Observation?patient=X" in text
