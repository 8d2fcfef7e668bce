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

Besides throughput, each case reports CPU time per unit, read from ``/proc`` around the measured phase: the
kzfhir server's processes (the ``serve`` process and its workers) and, on PostgreSQL, the cluster's processes
(the backends serving the connections), in µs per resource ingested and per read — the figure that does not
swing with the machine's other load (the load average is printed with it).

    python -m bench postgres                                # everything (part of `make bench`)
    python -m bench.bench_postgres --secure-reads [--bundles 4] [--seconds 6]
                                                            # secured read-by-id only: SQLite, PG 1 and 2 workers
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import driver, targets
from bench.compare import Options, _figures
from bench.pgcluster import BenchCluster
from bench.workload import Workload, workload

SEARCH_REPEATS = 200


@dataclass
class PgOptions(Options):
    workers: tuple[int, ...] = (1, 2)
    search_scale: int = 10
    search_repeats: int = SEARCH_REPEATS
    #: only the secured cases, reads by id (no open cases, no search)
    secure_reads: bool = False

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


# -- CPU time from /proc -------------------------------------------------------------------------------------
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stats() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, user + system CPU seconds) of every process we can read."""
    out: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        out[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK)
    return out


def _tree(stats: dict[int, tuple[int, float]], roots: set[int]) -> set[int]:
    found, grown = set(roots), True
    while grown:
        more = {pid for pid, (parent, _) in stats.items() if parent in found and pid not in found}
        grown = bool(more)
        found |= more
    return found & set(stats)


def _server_pid(port: int) -> int | None:
    """The ``kzfhir serve --port {port}`` process."""
    wanted = ["serve", "--port", str(port)]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if any(argv[i:i + 3] == wanted for i in range(len(argv))):
            return int(entry)
    return None


class Cpu:
    """CPU seconds used by the server's process tree and (``cluster``) PostgreSQL's, between ``start`` and
    ``stop``. Processes that ended in between are not counted (the server's and the cluster's live on)."""

    def __init__(self, port: int, cluster: BenchCluster | None) -> None:
        pid = _server_pid(port)
        self._roots = {pid} if pid is not None else set()
        self._pg: set[int] = set()
        if cluster is not None:
            with open(cluster.data / "postmaster.pid") as handle:
                self._pg = {int(handle.readline())}
        self.server = self.database = 0.0

    def _sample(self) -> tuple[float, float]:
        stats = _stats()
        return (sum(stats[p][1] for p in _tree(stats, self._roots)),
                sum(stats[p][1] for p in _tree(stats, self._pg)) if self._pg else 0.0)

    def start(self) -> None:
        self._at = self._sample()

    def stop(self) -> None:
        now = self._sample()
        self.server, self.database = now[0] - self._at[0], now[1] - self._at[1]


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def ingest_and_read(server_cm: AbstractContextManager[int], work: Workload, opts: Options,
                    cluster: BenchCluster | None, write: dict[str, str] | None = None,
                    read: dict[str, str] | None = None, *, ingest: bool = True) -> dict[str, Any]:
    """compare.ingest_and_read with the CPU time of each phase: ingest ``work``, warm up, then the measured
    reads (their own run, so that the CPU sampled around it is theirs alone)."""
    with server_cm as port:
        cpu = Cpu(port, cluster)
        cpu.start()
        ingested = driver.run(lambda: driver.ingest(port, work.bundles, clients=opts.clients, headers=write))
        cpu.stop()
        ingest_cpu = (cpu.server, cpu.database)
        paths = driver.read_paths(ingested)
        if not paths:
            raise RuntimeError(f"nothing to read after ingest: {ingested.errors}")
        driver.run(lambda: driver.read(port, paths, connections=opts.connections, seconds=0.0,
                                       warmup=opts.warmup, headers=read))
        cpu.start()
        loaded = driver.run(lambda: driver.read(port, paths, connections=opts.connections, seconds=opts.seconds,
                                                warmup=0.0, headers=read))
        cpu.stop()
    out = _figures(ingested, loaded)
    resources, reads = max(1, ingested.resources), max(1, loaded.requests)
    out.update({"ingest_server_us": ingest_cpu[0] / resources * 1e6, "ingest_db_us": ingest_cpu[1] / resources * 1e6,
                "read_server_us": cpu.server / reads * 1e6, "read_db_us": cpu.database / reads * 1e6,
                "load": _load()})
    return out


def secure_case(database: str, folder: Path, work: Workload, opts: Options, cluster: BenchCluster | None, *,
                workers: int = 1) -> dict[str, Any]:
    """compare.secure_case with CPU times: the patients and their Consents registered first (open mode), then
    the secured server; the MIS system token ingests, the practitioner reads under Consent."""
    with targets.kzfhir(database, folder, open_mode=True) as port:
        targets.register(port, work)
    server_cm = targets.kzfhir(database, folder, open_mode=False, workers=workers)
    system, doctor = targets.tokens(folder)
    return ingest_and_read(server_cm, work, opts, cluster, write=system, read=doctor)


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
                f"{', ' + str(figures['read_errors']) + ' read errors' if figures['read_errors'] else ''}; "
                f"CPU per read {figures['read_server_us']:,.0f} µs server + {figures['read_db_us']:,.0f} µs "
                f"PostgreSQL, per resource ingested {figures['ingest_server_us']:,.0f} + "
                f"{figures['ingest_db_us']:,.0f} µs; load average {figures['load']}")

        if not opts.secure_reads:
            record(("SQLite", 1, False), ingest_and_read(
                targets.kzfhir(str(folder / "open.sqlite"), folder, open_mode=True), work, opts, None))
        record(("SQLite", 1, True), secure_case(str(folder / "secure.sqlite"), folder, secure_work, opts, None))
        cluster = BenchCluster()
        try:
            def first_start(url: str) -> None:
                with targets.kzfhir(url, folder, open_mode=True):
                    pass  # started once and stopped: the schema and what the server publishes are in place

            for workers in opts.workers:
                if not opts.secure_reads:
                    database = cluster.published(first_start)
                    record(("PostgreSQL", workers, False), ingest_and_read(
                        targets.kzfhir(database, folder, open_mode=True, workers=workers), work, opts, cluster))
                record(("PostgreSQL", workers, True), secure_case(
                    cluster.published(first_start), folder, secure_work, opts, cluster, workers=workers))
            if not opts.secure_reads:
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
    yield (f"  {'backend':12}{'workers':>8}{'security':>10}{'ingest res/s':>14}{'read req/s':>12}{'read p99 ms':>13}"
           f"{'µs/read srv+db':>17}{'µs/res srv+db':>16}  load average")
    for (backend, workers, secure), f in cases.items():
        yield (f"  {backend:12}{workers:>8}{'on' if secure else 'off':>10}{f['ingest_rps']:>14,.0f}"
               f"{f['read_rps']:>12,.0f}{f['read_p99_ms']:>13.2f}"
               f"{f['read_server_us']:>9,.0f}+{f['read_db_us']:<7,.0f}"
               f"{f['ingest_server_us']:>8,.0f}+{f['ingest_db_us']:<7,.0f}  {f['load']}")
    most = max(opts.workers)
    for secure in (False, True) if not opts.secure_reads else (True,):
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


def main(opts: PgOptions | None = None, argv: list[str] | None = None) -> None:
    if opts is None and argv is not None:
        parser = argparse.ArgumentParser(prog="python -m bench.bench_postgres")
        parser.add_argument("--secure-reads", action="store_true", help="only the secured cases (read by id)")
        parser.add_argument("--bundles", type=int, default=PgOptions.bundles)
        parser.add_argument("--seconds", type=float, default=PgOptions.seconds)
        parser.add_argument("--workers", default="1,2", help="worker counts on PostgreSQL, e.g. 1,2")
        args = parser.parse_args(argv)
        opts = PgOptions(bundles=args.bundles, seconds=args.seconds, secure_reads=args.secure_reads,
                         workers=tuple(int(w) for w in args.workers.split(",")))
    results = measure(opts or PgOptions())
    for line in report(results):
        print(line, flush=True)


if __name__ == "__main__":
    import sys

    main(argv=sys.argv[1:])
