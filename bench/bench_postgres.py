"""PostgreSQL beside SQLite (issue 11, Proof): in one run, the same Synthea transaction Bundles ingested by 4
clients and read by id over 16 connections on

- SQLite, one process (``synchronous=FULL``);
- PostgreSQL with 1 and with 2 workers (``kzfhir serve --workers N --database postgresql://…``) on a cluster the
  bench starts itself, durable (``fsync`` and ``synchronous_commit`` on; bench/pgcluster.py);

each with security off (``--open``) and on (the secure default of bench/compare.py: an MIS system token
pushing, a practitioner reading under Consent, every read audited); then the search
``Observation?patient=X&_count=50`` (the patient with most Observations) on PostgreSQL at 1x and at 10x the
data (the same Bundles with new ids), p50/p95 over 200 repeats on one connection.

Nothing is pinned here: the server's workers, PostgreSQL and the driver share the machine's cores, as they
would on one host. Targets (2 cores): PostgreSQL with 2 workers >= SQLite's figures; search p95 < 20 ms at 10x.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import driver, targets
from bench.compare import Options, ingest_and_read, secure_case
from bench.pgcluster import BenchCluster
from bench.workload import workload

SEARCH_REPEATS = 200


@dataclass
class PgOptions(Options):
    workers: tuple[int, ...] = (1, 2)
    search_scale: int = 10
    search_repeats: int = SEARCH_REPEATS

    @classmethod
    def quick(cls) -> PgOptions:
        return cls(bundles=2, scales=(1,), seconds=1.0, warmup=0.3, search_scale=2, search_repeats=10)


@dataclass
class Results:
    options: PgOptions
    #: (backend, workers, security) -> figures
    cases: dict[tuple[str, int, bool], dict[str, Any]] = field(default_factory=dict)
    #: scale -> search figures
    search: dict[int, dict[str, Any]] = field(default_factory=dict)


def _search(port: int, patient: str, repeats: int) -> dict[str, Any]:
    done = driver.run(lambda: driver.search(port, f"/Observation?patient=Patient/{patient}&_count=50",
                                            repeats=repeats))
    return {"p50_ms": done.pct(50), "p95_ms": done.pct(95), "matches": done.matches, "repeats": done.repeats,
            "errors": done.errors}


def measure(opts: PgOptions, say: Callable[[str], None] = print) -> Results:
    out = Results(opts)
    work, secure_work = workload(opts.bundles), workload(opts.bundles, secure=True)
    say(f"{len(work.bundles)} Synthea transaction Bundles, {work.resources:,} resources "
        f"(secure: {secure_work.resources:,}, the Patients registered first)")
    with tempfile.TemporaryDirectory(prefix="kzfhir-bench-pg-") as tmp:
        folder = Path(tmp)

        def record(key: tuple[str, int, bool], figures: dict[str, Any]) -> None:
            out.cases[key] = figures
            say(f"  {key[0]:10} {key[1]} worker(s), security {'on ' if key[2] else 'off'}: "
                f"ingest {figures['ingest_rps']:7,.0f} resources/s ({figures['ingest_failed']} failed), "
                f"read {figures['read_rps']:8,.0f} req/s, p99 {figures['read_p99_ms']:.2f} ms"
                f"{', ' + str(figures['read_errors']) + ' read errors' if figures['read_errors'] else ''}")

        record(("SQLite", 1, False), ingest_and_read(
            targets.kzfhir(str(folder / "open.sqlite"), folder, open_mode=True), work, opts)[0])
        record(("SQLite", 1, True), secure_case(str(folder / "secure.sqlite"), folder, secure_work, opts))
        cluster = BenchCluster()
        try:
            def first_start(url: str) -> None:
                with targets.kzfhir(url, folder, open_mode=True):
                    pass  # started once and stopped: the schema and what the server publishes are in place

            for workers in opts.workers:
                database = cluster.published(first_start)
                record(("PostgreSQL", workers, False), ingest_and_read(
                    targets.kzfhir(database, folder, open_mode=True, workers=workers), work, opts)[0])
                record(("PostgreSQL", workers, True), secure_case(
                    cluster.published(first_start), folder, secure_work, opts, workers=workers))
            out.search = _search_scales(cluster.published(first_start), folder, opts, say)
        finally:
            cluster.stop()
    return out


def _search_scales(database: str, folder: Path, opts: PgOptions, say: Callable[[str], None]
                   ) -> dict[int, dict[str, Any]]:
    """1x ingested, searched; the other copies ingested, searched again (one worker, open mode)."""
    found: dict[int, dict[str, Any]] = {}
    first = workload(opts.bundles)
    with targets.kzfhir(database, folder, open_mode=True) as port:
        done = driver.run(lambda: driver.ingest(port, first.bundles, clients=opts.clients))
        patient = done.busiest_patient()
        found[1] = _search(port, patient, opts.search_repeats) | {"resources": done.resources}
        more = workload(opts.bundles, opts.search_scale).bundles[len(first.bundles):]
        extra = driver.run(lambda: driver.ingest(port, more, clients=opts.clients))
        found[opts.search_scale] = (_search(port, patient, opts.search_repeats)
                                    | {"resources": done.resources + extra.resources})
    for scale, figures in found.items():
        say(f"  search at {scale}x ({figures['resources']:,} resources): p50 {figures['p50_ms']:.2f} ms, "
            f"p95 {figures['p95_ms']:.2f} ms, {figures['matches']} matches")
    return found


def report(results: Results) -> Iterator[str]:
    opts, cases = results.options, results.cases
    yield (f"\n{opts.bundles} Bundles, {opts.clients} ingest clients, {opts.connections} read connections "
           f"({opts.seconds:g} s after {opts.warmup:g} s warm-up); nothing pinned")
    yield f"  {'backend':12}{'workers':>8}{'security':>10}{'ingest res/s':>14}{'read req/s':>12}{'read p99 ms':>13}"
    for (backend, workers, secure), f in cases.items():
        yield (f"  {backend:12}{workers:>8}{'on' if secure else 'off':>10}{f['ingest_rps']:>14,.0f}"
               f"{f['read_rps']:>12,.0f}{f['read_p99_ms']:>13.2f}")
    most = max(opts.workers)
    for secure in (False, True):
        label = "on" if secure else "off"
        base = cases[("PostgreSQL", min(opts.workers), secure)]
        top = cases[("PostgreSQL", most, secure)]
        lite = cases[("SQLite", 1, secure)]
        ok = top["ingest_rps"] >= lite["ingest_rps"] and top["read_rps"] >= lite["read_rps"]
        yield (f"  security {label}: PostgreSQL {most} workers / {min(opts.workers)}: ingest "
               f"{top['ingest_rps'] / base['ingest_rps']:.2f}x, read {top['read_rps'] / base['read_rps']:.2f}x; "
               f"PostgreSQL {most} workers / SQLite: ingest {top['ingest_rps'] / lite['ingest_rps']:.2f}x, read "
               f"{top['read_rps'] / lite['read_rps']:.2f}x ({'met' if ok else 'NOT met'}: >= SQLite)")
    for scale, s in results.search.items():
        verdict = "" if scale == 1 else f" ({'met' if s['p95_ms'] < 20 else 'NOT met'}: p95 < 20 ms)"
        yield (f"  search Observation?patient=X&_count=50 on PostgreSQL at {scale}x ({s['resources']:,} resources): "
               f"p50 {s['p50_ms']:.2f} ms, p95 {s['p95_ms']:.2f} ms, {s['matches']} matches{verdict}")


def main(opts: PgOptions | None = None) -> None:
    results = measure(opts or PgOptions())
    for line in report(results):
        print(line, flush=True)
