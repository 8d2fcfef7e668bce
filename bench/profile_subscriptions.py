"""Where a TM-26 reading's server CPU goes (issue 15 "Proof", docs/subscriptions.md Bench): the load of
``bench_subscriptions`` (readings from 16 connections, every 10th critical, one critical-reading rest-hook
Subscription per patient) against a real ``kzfhir serve --open`` while py-spy samples every thread of it:

    python -m bench.profile_subscriptions [--seconds 20] [--rate 1000] [--batch 0] [--without] [--sample-rate 200]

py-spy is not a dependency of the project: ``pip install py-spy`` first (root, or ptrace allowed).

Each sample is put in one stage. The unit's bulk insert of its queued history and index rows is a stage
of its own, whoever triggered it (a search inside the unit flushes what was queued before it). The
*cause* stages come next — a sample whose stack passes through the
monitoring hook, the subscription matching, the outbox worker, the delivery or the rest-hook client is
theirs, whatever it does inside (a DetectedIssue's index rows are the monitoring's cost) — then the
*kind* of work of the reading's own request, innermost frame first (as bench/profile_ingest.py). The
server's CPU time (/proc, per thread) is spread over each thread's samples: a thread's share of a stage is
its CPU × that stage's share of its samples. Samples in the writer's ``COMMIT`` are left out of that
spread and shown apart: py-spy counts a thread blocked in ``fsync`` as running, so they are the commit's
wall time (the fsync), not CPU; the commit's own CPU (writing the WAL) is small and lands in the
writer's other stages in proportion.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench import bench_subscriptions as subs
from bench import server

#: work shared by everything a unit wrote, whoever made it run: the unit's queued history and index rows
#: inserted in bulk (a search inside the unit, such as the monitoring's, flushes what was queued before it)
SHARED: list[tuple[str, tuple[str, ...]]] = [
    ("SQL: the unit's queued history and index rows (bulk insert)", ("SqliteTxView.flush (",)),
]
#: stages that name *why* the work was done, in priority order: the first whose frame is anywhere in the
#: stack decides (a DetectedIssue's index rows are the monitoring's; the event it raises, the matching's)
CAUSES: list[tuple[str, tuple[str, ...]]] = [
    ("rest-hook client (the POST)", ("subscriptions/http.py",)),
    ("delivery (reads, policy, bundle, audit of the delivery)", ("subscriptions/delivery.py",
                                                                  "jobs/delivery_audit.py")),
    ("outbox worker (claim, settle)", ("jobs/worker.py",)),
    ("subscription matching (topic, filters, policy, event rows)", ("subscriptions/matching.py",
                                                                    "subscriptions/candidates.py",
                                                                    "subscriptions/registry.py")),
    ("monitoring: urgent notices (outbox rows)", ("critical_notices (",)),
    ("monitoring: participants (CareTeam search)", ("_participants (",)),
    ("monitoring: DetectedIssue + Task writes", ("MonitoringAlerts._alert (",)),
    ("monitoring: Goal lookup and comparison", ("jobs/monitoring.py",)),
]
#: the kind of work of what is left (the reading's own request), innermost frame first
KINDS: list[tuple[str, tuple[str, ...]]] = [
    ("SQL statements (resources, history, index rows)", ("storage/sqlite/search/writer.py",
                                                         "storage/sqlite/txview.py", "storage/sqlite/history.py",
                                                         "storage/sqlite/store.py", "storage/sqlite/outbox.py")),
    ("validation", ("fhir_server/validation/", "fhirpathpy/", "antlr4/", "profiles/", "terminology/")),
    ("index extraction", ("fhir_server/search/", "storage/sqlite/indexing.py")),
    ("parse (JSON)", ("fhir_server/jsonio.py", "json/decoder.py", "orjson", "api/body.py")),
    ("audit", ("security/audit/", "storage/sqlite/audit/", "storage/audit")),
    ("policy", ("security/policy/", "security/session.py", "security/tx_facts.py", "security/read_gate.py",
                "security/facts_store.py", "security/context.py", "security/refs.py")),
    ("write planning and execution", ("fhir_server/interactions/",)),
    ("response, routing and HTTP", ("fhir_server/api/", "fhir_server/formats/", "uvicorn/", "starlette/",
                                    "fastapi/", "httptools", "h11/")),
    ("writer queue and group commit", ("storage/sqlite/writer.py",)),
]
#: the innermost frame of a thread that waits, though py-spy counts it as running (blocked in fsync, or
#: woken and waiting for a CPU on a loaded machine): wall time, left out of the CPU spread
WAITS: list[tuple[str, tuple[str, ...]]] = [
    ("the writer's COMMIT (fsync)", ("GroupCommitWriter._commit (fhir_server/storage/sqlite/writer.py:190)",)),
    ("the writer's queue (woken, waiting for a CPU)", ("GroupCommitWriter._run (fhir_server/storage/sqlite/"
                                                        "writer.py:121)",)),
    ("the event loop in C (epoll, sockets, wake-ups)", ("Runner.run (asyncio/runners.py:118)",)),
]
WAITING = {stage for stage, _ in WAITS}


def classify(stack: str) -> str:
    frames = stack.split(";")[:0:-1]  # innermost first; the first element names the thread
    for stage, needles in WAITS:
        if frames and frames[0] in needles:
            return stage
    for stage, needles in [*SHARED, *CAUSES]:
        if any(n in frame for frame in frames for n in needles):
            return stage
    for frame in frames:
        for stage, needles in KINDS:
            if any(n in frame for n in needles):
                return stage
    return "other (event loop, interpreter, threads)"


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of ``pid``."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / tick
    return out


async def _setup(base: str, receiver: subs.Receiver, *, with_subscriptions: bool) -> None:
    endpoint = await receiver.start()
    async with httpx.AsyncClient(base_url=base, timeout=60) as c:
        for n in range(subs.PATIENTS):
            patient = f"p{n}"
            (await c.put(f"/Patient/{patient}", json={"resourceType": "Patient", "id": patient},
                         headers=subs.HEADERS)).raise_for_status()
            (await c.put(f"/Goal/g-{patient}", json=subs._goal(patient), headers=subs.HEADERS)).raise_for_status()
        if with_subscriptions:
            for n in range(subs.PATIENTS):
                (await c.post("/Subscription", json=subs._subscription(f"p{n}", endpoint),
                              headers=subs.HEADERS)).raise_for_status()
            deadline = time.monotonic() + 60
            while receiver.handshakes < subs.PATIENTS and time.monotonic() < deadline:
                await asyncio.sleep(0.1)


async def _profile(port: int, pid: int, spy: str, raw: Path, args: argparse.Namespace) -> None:
    base = f"http://127.0.0.1:{port}"
    receiver = subs.Receiver()
    await _setup(base, receiver, with_subscriptions=not args.without)
    record = subprocess.Popen([spy, "record", "--pid", str(pid), "--format", "raw", "--rate", str(args.sample_rate),
                               "--output", str(raw), "--nonblocking", "--threads"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    await asyncio.sleep(1.0)
    before, load = thread_cpu(pid), subs._load()
    result = subs.Round("profiled", args.batch)
    await subs._write_load(base, "x", result)
    if not args.without:
        await receiver.wait_for(set(result.sent), 60)
    after = thread_cpu(pid)
    record.send_signal(2)  # SIGINT: py-spy writes what it sampled and exits
    record.wait(timeout=60)
    await receiver.stop()
    latencies = [(receiver.arrived[o].received - at) * 1000 for o, (at, _) in result.sent.items()
                 if o in receiver.arrived]
    if args.keep is not None:
        shutil.copyfile(raw, args.keep)
    _report(raw, {t: after[t] - before.get(t, 0.0) for t in after}, result, latencies, load, args)


def _report(raw: Path, cpu: dict[int, float], result: subs.Round, latencies: list[float], load: str,
            args: argparse.Namespace) -> None:
    samples: dict[int, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    names: dict[int, str] = {}
    for line in raw.read_text().splitlines():
        stack, _, text = line.rpartition(" ")
        if not (stack and text.isdigit()):
            continue
        head = stack.split(";", 1)[0]  # "thread (1234): name" (py-spy --threads)
        tid = int(head.split("(", 1)[1].split(")", 1)[0], 0)
        names[tid] = head.split(": ", 1)[-1]
        samples[tid][classify(stack)] += int(text)
    total_cpu = sum(cpu.values())
    readings = max(1, result.written)
    stages: dict[str, float] = collections.defaultdict(float)
    waits: collections.Counter[str] = collections.Counter()
    for tid, counter in samples.items():
        busy = sum(n for stage, n in counter.items() if stage not in WAITING)
        for stage, n in counter.items():
            if stage in WAITING:
                waits[stage] += n
            elif busy:
                stages[stage] += cpu.get(tid, 0.0) * n / busy
    unsampled = total_cpu - sum(stages.values())  # threads py-spy never saw busy (native, short-lived)
    mode = "without subscriptions" if args.without else f"{subs.PATIENTS} subscriptions"
    shape = f"{subs.BUNDLE} Bundles of {args.batch}" if args.batch else "one reading per request"
    print(f"{result.written} readings in {result.seconds:.1f} s ({result.rate:,.0f}/s, {shape}, {mode}); "
          f"load average {load} → {subs._load()}")
    print(f"server CPU {total_cpu:.2f} s = {total_cpu * 1e6 / readings:,.0f} µs per reading; alerts "
          f"{len(latencies)} of {len(result.sent)}, p50 {subs._pct(latencies, 50):.0f} ms, "
          f"p99 {subs._pct(latencies, 99):.0f} ms")
    by_thread = collections.Counter({names.get(t, str(t)): c for t, c in cpu.items()})
    print("  by thread: " + ", ".join(f"{name} {c * 1e6 / readings:,.0f} µs" for name, c in by_thread.most_common(4)))
    for stage, seconds in sorted(stages.items(), key=lambda kv: -kv[1]):
        print(f"  {stage:62} {seconds * 1e6 / readings:7,.0f} µs per reading  {seconds / total_cpu:6.1%}")
    if abs(unsampled) * 1e6 / readings >= 1:
        print(f"  {'(threads without samples)':62} {unsampled * 1e6 / readings:7,.0f} µs per reading")
    for stage, n in waits.most_common():
        print(f"  not CPU: {stage}, {n / args.sample_rate * 1e6 / readings:,.0f} µs of wall time per reading")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_subscriptions")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=1000.0, help="readings/s offered")
    parser.add_argument("--batch", type=int, default=0, help="readings per batch Bundle (0: one PUT each)")
    parser.add_argument("--without", action="store_true", help="no subscriptions")
    parser.add_argument("--critical-every", type=int, default=subs.CRITICAL_EVERY,
                        help="every Nth reading outside the limits (0: none)")
    parser.add_argument("--sample-rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--keep", type=Path, help="copy py-spy's raw stacks here")
    args = parser.parse_args(argv)
    subs.SECONDS, subs.RATE = args.seconds, args.rate
    subs.CRITICAL_EVERY = args.critical_every
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        raise SystemExit("py-spy is not installed: pip install py-spy")
    with tempfile.TemporaryDirectory(prefix="kzfhir-subsprofile-") as tmp:
        port = server.free_port()
        proc = server.start(["-m", "fhir_server.cli", "serve", "--port", str(port), "--database",
                             str(Path(tmp) / "subs.sqlite"), "--log-level", "warning", "--open"], port)
        try:
            asyncio.run(_profile(port, proc.pid, spy, Path(tmp) / "stacks.txt", args))
        finally:
            server.stop(proc)


if __name__ == "__main__":
    main()
