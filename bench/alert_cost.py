"""What one TM-26 alert and one subscription notification cost in server CPU, measured in process and
told apart by difference (docs/subscriptions.md, Bench):

    python -m bench.alert_cost [--readings 300] [--repeat 3] [--split]

The application (``create_app``, security off as in bench_subscriptions; SQLite) runs in this process with
100 patients, each with a heart-rate Goal. Readings are written one after another (no contention between
them; each its own write unit and commit) through the ASGI interface, in three series of ``--readings``
each: within the limits, outside them (a DetectedIssue, a Task, the urgent notice, the topic event), and
outside them with one critical-reading rest-hook Subscription per patient (id-only), each notification
waited for at a receiver on a loopback port. The figure of each series is this process's CPU time
(``time.process_time``: every thread) per reading, the best of ``--repeat`` rounds; the differences are the
alert's cost and the notification's (matching, outbox row, claim, delivery, settle, the receiver's parse).
The client's own work is the same in every series and cancels out.

``--split`` also times the synchronous steps of the alert and of the event inside the write unit (the
writer's thread CPU, ``time.thread_time``, inclusive of what each calls) and prints them per alert.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench import bench_subscriptions as subs
from fhir_server.api.app import create_app
from fhir_server.config import Settings

BASE = "http://kzfhir.test"
#: --split: (label, module, attribute path) of the steps timed, each wrapped where its caller finds it
STEPS: list[tuple[str, str, str]] = [
    ("alert in the unit (all below but the matching)", "fhir_server.jobs.monitoring", "MonitoringAlerts._alert"),
    ("  DetectedIssue + Task written (both)", "fhir_server.jobs.monitoring", "store_version"),
    ("  participants (CareTeam search in the unit)", "fhir_server.jobs.monitoring", "_participants"),
    ("  urgent notices (outbox rows)", "fhir_server.subscriptions.service", "critical_notices"),
    ("Goal limits (cached per patient)", "fhir_server.jobs.monitoring", "MonitoringAlerts._matching"),
    ("subscription matching at the unit's end", "fhir_server.subscriptions.matching", "SubscriptionHooks._match"),
    ("  event number (job record read + write)", "fhir_server.subscriptions.registry", "Registry.next_event"),
    ("settle unit's work (outbox update, delivery audit)", "fhir_server.jobs.worker", "_settle_all"),
]
TIMES: collections.Counter[str] = collections.Counter()
CALLS: collections.Counter[str] = collections.Counter()


def _timed(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            TIMES[label] += int((time.thread_time() - started) * 1e9)
            CALLS[label] += 1
    return wrapper


def _install_timers() -> None:
    import importlib

    for label, module, path in STEPS:
        owner: Any = importlib.import_module(module)
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        setattr(owner, name, _timed(label, getattr(owner, name)))


async def _series(c: httpx.AsyncClient, receiver: subs.Receiver, tag: str, n: int, value: int,
                  notified: bool) -> float:
    """CPU seconds per reading of ``n`` readings of ``value``, each (``notified``) until its notification."""
    TIMES.clear()
    CALLS.clear()
    cpu0 = time.process_time()
    for k in range(n):
        pid, oid = f"p{k % subs.PATIENTS}", f"{tag}-{k}"
        r = await c.put(f"/Observation/{oid}", content=subs._reading(pid, oid, value), headers=subs.HEADERS)
        r.raise_for_status()
        if notified:
            await receiver.wait_for({oid}, 10)
            if oid not in receiver.arrived:
                raise RuntimeError(f"no notification for {oid}")
    return (time.process_time() - cpu0) / n


async def _run(args: argparse.Namespace, folder: Path) -> None:
    settings = Settings(database=folder / "cost.sqlite", dev_key_path=folder / "jwks.json", security_enabled=False)
    app = create_app(settings)
    receiver = subs.Receiver()
    endpoint = await receiver.start()
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE, timeout=60) as c:
        for n in range(subs.PATIENTS):
            patient = f"p{n}"
            (await c.put(f"/Patient/{patient}", json={"resourceType": "Patient", "id": patient},
                         headers=subs.HEADERS)).raise_for_status()
            (await c.put(f"/Goal/g-{patient}", json=subs._goal(patient), headers=subs.HEADERS)).raise_for_status()
        await _series(c, receiver, "warm", subs.PATIENTS * 2, 180, notified=False)  # limits cached, code warm
        normal, critical = [], []
        for r in range(args.repeat):
            normal.append(await _series(c, receiver, f"n{r}", args.readings, 80, notified=False))
            critical.append(await _series(c, receiver, f"c{r}", args.readings, 180, notified=False))
        for n in range(subs.PATIENTS):
            (await c.post("/Subscription", json=subs._subscription(f"p{n}", endpoint), headers=subs.HEADERS)
             ).raise_for_status()
        deadline = time.monotonic() + 60
        while receiver.handshakes < subs.PATIENTS and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await _series(c, receiver, "warm-s", 20, 180, notified=True)
        notified = [await _series(c, receiver, f"s{r}", args.readings, 180, notified=True) for r in range(args.repeat)]
        split = dict(TIMES), dict(CALLS)  # of the last series: alerts with their notifications
    await receiver.stop()
    a, b, s = min(normal) * 1e6, min(critical) * 1e6, min(notified) * 1e6
    print(f"{args.readings} readings a series, best of {args.repeat}; load average {subs._load()}")
    print(f"  reading within the limits:                 {a:7,.0f} µs CPU (server and client, in process)")
    print(f"  reading outside them (the alert):          {b:7,.0f} µs  → the alert costs {b - a:+,.0f} µs")
    print(f"  ... with 100 subscriptions, one notified:  {s:7,.0f} µs  → the notification costs {s - b:+,.0f} µs")
    if args.split:
        times, calls = split
        print(f"  steps in the write unit (writer thread CPU, inclusive), per alert, last series of {args.readings}:")
        for label, _, _ in STEPS:
            if label in times:
                print(f"    {label:58} {times[label] / 1e3 / args.readings:6,.0f} µs ({calls[label]} calls)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.alert_cost")
    parser.add_argument("--readings", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--split", action="store_true", help="time the steps inside the write unit")
    args = parser.parse_args(argv)
    if args.split:
        _install_timers()
    with tempfile.TemporaryDirectory(prefix="kzfhir-alert-cost-") as tmp:
        asyncio.run(_run(args, Path(tmp)))


if __name__ == "__main__":
    main()
