"""Side by side with the peer (issue 20): in one run, the same Synthea transaction Bundles ingested by 4
clients and read by id over 16 keep-alive connections, for

- **medplum**: the peer, Medplum's ``FhirRouter`` over its ``MemoryRepository`` (tools/peer-medplum, pinned
  npm packages installed by ``make peer-medplum``): in memory, validating every write;
- **kzfhir open**: ``kzfhir serve --open`` (validation on, SQLite with synchronous=FULL);
- **kzfhir secure**: the default, security on: an MIS ``system`` token (its BIN) pushes the Bundles, each
  patient registered with an active Consent beforehand (an active Consent written by a system token needs the
  patient's signed form, AC-08; bench/workload.py), and a practitioner reads under those Consents, every read
  audited;
- **ceiling**: the same ASGI server (uvicorn, uvloop, httptools) answering each read path with bytes of the
  size kzfhir answered, no FHIR work at all (bench/ceiling.py);

at 1x and at 10x the data (the same Bundles with new ids), every figure with its ratio to the peer. Each
server runs on one core and this driver on the other (``taskset``), each case in a fresh process and store;
rounds alternate the order of the cases (peer first, then peer last) so that drift of the machine hits all alike.

    python -m bench compare [--bundles 20] [--scales 1,10] [--rounds 1] [--seconds 6] [--json FILE]
    python -m bench compare --quick        # a few seconds: 2 Bundles, 1x and 2x (tests/bench/)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import driver, server, targets
from bench.workload import Workload, workload

CASES = ("medplum", "open", "secure", "ceiling")
LABELS = {"medplum": "Medplum peer", "open": "kzfhir open", "secure": "kzfhir secure", "ceiling": "raw-ASGI ceiling"}


@dataclass
class Options:
    bundles: int = 20
    scales: tuple[int, ...] = (1, 10)
    rounds: int = 1
    seconds: float = 6.0
    warmup: float = 1.5
    clients: int = 4
    connections: int = 16

    @classmethod
    def quick(cls) -> Options:
        return cls(bundles=2, scales=(1, 2), rounds=1, seconds=1.0, warmup=0.3)


def _figures(ingested: driver.Ingested | None, read: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"read_rps": read.rps, "read_p50_ms": read.pct(50), "read_p99_ms": read.pct(99),
                           "read_errors": read.errors, "reads": read.requests}
    if ingested is not None:
        out.update({"ingest_rps": ingested.rate, "ingested": ingested.resources, "ingest_failed": ingested.failed,
                    "ingest_seconds": ingested.seconds, "ingest_errors": ingested.errors,
                    "ingest_retries": ingested.retries,
                    "bundle_p50_ms": _pct(ingested.bundle_ms, 50)})
    return out


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


def ingest_and_read(server_cm: AbstractContextManager[int], work: Workload, opts: Options,
                    write: dict[str, str] | None = None, read: dict[str, str] | None = None, *,
                    keep_sizes: bool = False) -> tuple[dict[str, Any], dict[str, int]]:
    """Start the server, ingest ``work`` with ``write``'s headers, read what it created with ``read``'s; the
    figures, and (``keep_sizes``) each read path's body size."""
    sizes: dict[str, int] = {}
    with server_cm as port:
        ingested = driver.run(lambda: driver.ingest(port, work.bundles, clients=opts.clients, headers=write))
        paths = driver.read_paths(ingested)
        if not paths:
            raise RuntimeError(f"nothing to read after ingest: {ingested.errors}")
        if keep_sizes:
            sizes = targets.sizes(port, paths, read)
        loaded = driver.run(lambda: driver.read(port, paths, connections=opts.connections, seconds=opts.seconds,
                                                warmup=opts.warmup, headers=read))
    return _figures(ingested, loaded), sizes


def secure_case(database: str, folder: Path, work: Workload, opts: Options, *, cpus: str | None = None,
                workers: int = 1) -> dict[str, Any]:
    """The secure default on ``database``: the patients and their Consents registered first (an operator, open
    mode), then the secured server; the MIS system token ingests, the practitioner reads under Consent."""
    with targets.kzfhir(database, folder, open_mode=True, cpus=cpus) as port:
        targets.register(port, work)
    server_cm = targets.kzfhir(database, folder, open_mode=False, cpus=cpus, workers=workers)
    system, doctor = targets.tokens(folder)
    return ingest_and_read(server_cm, work, opts, write=system, read=doctor)[0]


class Run:
    """One scale of one round: the four cases, sharing the read paths' sizes for the ceiling."""

    def __init__(self, opts: Options, work: Workload, secure_work: Workload, folder: Path, cpus: str | None):
        self.opts, self.work, self.secure_work, self.folder, self.cpus = opts, work, secure_work, folder, cpus
        self.sizes: dict[str, int] = {}

    def _ingest_and_read(self, server_cm: AbstractContextManager[int], work: Workload,
                         write: dict[str, str] | None = None, read: dict[str, str] | None = None,
                         keep_sizes: bool = False) -> dict[str, Any]:
        figures, sizes = ingest_and_read(server_cm, work, self.opts, write, read, keep_sizes=keep_sizes)
        if keep_sizes:
            self.sizes = sizes
        return figures

    def medplum(self) -> dict[str, Any]:
        return self._ingest_and_read(targets.medplum(cpus=self.cpus, log=self.folder / "medplum.log"), self.work)

    def open(self) -> dict[str, Any]:
        database = str(self.folder / f"open-{time.monotonic_ns()}.sqlite")
        return self._ingest_and_read(targets.kzfhir(database, self.folder, open_mode=True, cpus=self.cpus),
                                     self.work, keep_sizes=True)

    def secure(self) -> dict[str, Any]:
        database = str(self.folder / f"secure-{time.monotonic_ns()}.sqlite")
        return secure_case(database, self.folder, self.secure_work, self.opts, cpus=self.cpus)

    def ceiling(self) -> dict[str, Any]:
        if not self.sizes:  # the open case ran later in this round's order: measure the sizes first
            self.open()
        with targets.ceiling(self.sizes, self.folder, cpus=self.cpus) as port:
            paths = list(self.sizes)
            loaded = driver.run(lambda: driver.read(port, paths, connections=self.opts.connections,
                                                    seconds=self.opts.seconds, warmup=self.opts.warmup))
        return _figures(None, loaded)


def measure(opts: Options, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Every case at every scale, ``opts.rounds`` times; the report (see ``report``) as a dict."""
    cpus, driver_cpus = server.split_cpus()
    if driver_cpus is not None:
        os.sched_setaffinity(0, driver_cpus)
    results: dict[str, Any] = {"options": opts.__dict__ | {"scales": list(opts.scales)},
                               "pinning": {"server": cpus, "driver": sorted(driver_cpus or [])}, "scales": {}}
    with tempfile.TemporaryDirectory(prefix="kzfhir-compare-") as tmp:
        folder = Path(tmp)
        for scale in opts.scales:
            work, secure_work = workload(opts.bundles, scale), workload(opts.bundles, scale, secure=True)
            rounds: dict[str, list[dict[str, Any]]] = {case: [] for case in CASES}
            say(f"{scale}x: {len(work.bundles)} Synthea transaction Bundles, {work.resources:,} resources")
            for round_ in range(opts.rounds):
                run = Run(opts, work, secure_work, folder, cpus)
                # the ceiling needs the open case's sizes: keep it after "open" in both orders
                order = CASES if round_ % 2 == 0 else ("secure", "open", "ceiling", "medplum")
                for case in order:
                    figures = getattr(run, case)()
                    rounds[case].append(figures)
                    say(f"  round {round_ + 1} {LABELS[case]:17}" + _line(figures))
            results["scales"][str(scale)] = {"bundles": len(work.bundles), "resources": work.resources,
                                             "secure_resources": secure_work.resources,
                                             "rounds": rounds, "median": _medians(rounds)}
    return results


def _line(f: dict[str, Any]) -> str:
    ingest = (f" ingest {f['ingest_rps']:7,.0f} resources/s ({f['ingested']:,} in {f['ingest_seconds']:.1f} s, "
              f"{f['ingest_failed']} failed, {f['ingest_retries']} retried)," if "ingest_rps" in f else "")
    return (f"{ingest} read {f['read_rps']:8,.0f} req/s, p50 {f['read_p50_ms']:.2f} ms, p99 {f['read_p99_ms']:.2f} ms"
            f"{', ' + str(f['read_errors']) + ' errors' if f['read_errors'] else ''}")


def _medians(rounds: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for case, figures in rounds.items():
        keys = [k for k, v in figures[0].items() if isinstance(v, (int, float))]
        out[case] = {k: float(statistics.median(f[k] for f in figures)) for k in keys}
    return out


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def report(results: dict[str, Any]) -> Iterator[str]:
    """The table per scale (medians), each figure with its ratio to the peer, and issue 20's targets."""
    opts = results["options"]
    pins = results["pinning"]
    yield (f"\nSide by side (medians of {opts['rounds']} round(s); server pinned to CPU {pins['server']}, "
           f"driver to {pins['driver']}; {opts['clients']} ingest clients, {opts['connections']} read "
           f"connections, {opts['seconds']:g} s after {opts['warmup']:g} s warm-up)")
    for scale, data in results["scales"].items():
        m = data["median"]
        peer = m["medplum"]
        yield (f"\n{scale}x data: {data['bundles']} Bundles, {data['resources']:,} resources "
               f"(secure: {data['secure_resources']:,}, the Patients registered first)")
        yield f"  {'figure':22}" + "".join(f"{LABELS[c]:>24}" for c in CASES)
        rows = [("ingest resources/s", "ingest_rps", True), ("read req/s", "read_rps", True),
                ("read p50 ms", "read_p50_ms", False), ("read p99 ms", "read_p99_ms", False)]
        for label, key, ratio in rows:
            cells = []
            for case in CASES:
                value = m[case].get(key)
                if value is None:
                    cells.append(f"{'-':>24}")
                    continue
                text = f"{value:,.0f}" if ratio else f"{value:.2f}"
                if ratio and case != "medplum":
                    text += f" ({_ratio(value, peer[key])})"
                cells.append(f"{text:>24}")
            yield f"  {label:22}" + "".join(cells)
        ceiling = m["ceiling"]["read_rps"]
        yield (f"  read / ceiling: open {m['open']['read_rps'] / ceiling:.0%}, secure "
               f"{m['secure']['read_rps'] / ceiling:.0%}; policy + audit overhead on reads "
               f"{1 - m['secure']['read_rps'] / m['open']['read_rps']:.0%}")
    yield from _targets(results)


def _targets(results: dict[str, Any]) -> Iterator[str]:
    scales = results["scales"]
    first = scales[min(scales, key=int)]["median"]
    peer, open_, secure = first["medplum"], first["open"], first["secure"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    yield "\nIssue 20's targets (at the smallest scale):"
    checks = [
        (f"open ingest >= 1.5x peer: {open_['ingest_rps'] / peer['ingest_rps']:.2f}x",
         open_["ingest_rps"] >= 1.5 * peer["ingest_rps"]),
        (f"open read >= 1.5x peer: {open_['read_rps'] / peer['read_rps']:.2f}x",
         open_["read_rps"] >= 1.5 * peer["read_rps"]),
        (f"open read p99 < 20 ms: {open_['read_p99_ms']:.2f} ms", open_["read_p99_ms"] < 20),
        (f"open read >= 75% of the ceiling: {open_['read_rps'] / first['ceiling']['read_rps']:.0%}",
         open_["read_rps"] >= 0.75 * first["ceiling"]["read_rps"]),
        (f"secure ingest >= 1.0x peer: {secure['ingest_rps'] / peer['ingest_rps']:.2f}x",
         secure["ingest_rps"] >= peer["ingest_rps"]),
        (f"secure read >= 1.2x peer: {secure['read_rps'] / peer['read_rps']:.2f}x",
         secure["read_rps"] >= 1.2 * peer["read_rps"]),
        (f"policy + audit overhead on reads <= 10%: {1 - secure['read_rps'] / open_['read_rps']:.0%}",
         secure["read_rps"] >= 0.9 * open_["read_rps"]),
    ]
    if len(scales) > 1:
        last = scales[max(scales, key=int)]["median"]
        big = max(scales, key=int)
        for case in ("open", "secure"):
            ingest = last[case]["ingest_rps"] / first[case]["ingest_rps"] - 1
            p99 = last[case]["read_p99_ms"] / first[case]["read_p99_ms"] - 1
            checks.append((f"{case} at {big}x within 15% of the smallest scale: ingest {ingest:+.0%}, "
                           f"read p99 {p99:+.0%}", ingest >= -0.15 and p99 <= 0.15))
    for text, ok in checks:
        yield f"  {verdict(ok):8} {text}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundles", type=int, default=Options.bundles, help="Synthea Bundles at 1x (at most 75)")
    parser.add_argument("--scales", default="1,10", help="data scales, comma-separated (default 1,10)")
    parser.add_argument("--rounds", type=int, default=Options.rounds)
    parser.add_argument("--seconds", type=float, default=Options.seconds, help="read load per case")
    parser.add_argument("--quick", action="store_true", help="2 Bundles, 1x and 2x, 1 s reads (a few seconds)")
    parser.add_argument("--json", type=Path, help="also write the figures, every round's, to this file")
    args = parser.parse_args(argv)
    opts = Options.quick() if args.quick else Options(
        bundles=args.bundles, scales=tuple(int(s) for s in args.scales.split(",")), rounds=args.rounds,
        seconds=args.seconds)
    results = measure(opts)
    for line in report(results):
        print(line, flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
