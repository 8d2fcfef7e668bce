"""Reliability soak (issue 12): a real secured ``kzfhir serve`` under a fixed request rate of mixed
reads, searches, creates and updates, for a bounded time (loopback only).

    python -m bench reliability [--minutes 10] [--rate 40]

Prints per minute: requests, errors (5xx and transport failures), p99 latency, RSS and database
growth; at the end whether ``kzfhir audit verify`` accepts the audit chain, and the bytes one
audited read adds to the database (a read-only phase on a restarted server).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.server import free_port, start, stop
from fhir_server.security.auth import issue_dev_token

BIN = "940140000385"
PATIENTS = 50
JSON = {"content-type": "application/fhir+json", "prefer": "return=minimal"}


@dataclass
class Minute:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0  # 5xx answers
    failures: int = 0  # transport failures and client time-outs (no answer)
    refused: dict[str, int] = field(default_factory=dict)  # 4xx per "METHOD status"; the mix sends valid requests

    def p99(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else float("nan")


def _rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A resident-memory figure of the process, in MB: ``VmRSS`` (all), ``RssAnon`` (heap: Python objects and
    SQLite's page caches) or ``RssFile`` (pages of mapped files: the store's mmap, which grows with what reads
    touch and which the kernel reclaims under pressure)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _rss(pid: int) -> str:
    return (f"RSS {_rss_mb(pid):6.0f} MB (anon {_rss_mb(pid, 'RssAnon'):4.0f}, "
            f"file {_rss_mb(pid, 'RssFile'):4.0f})")


def _db_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.name.startswith("db"))


def _used_bytes(folder: Path) -> int:
    """The bytes the store's SQLite files hold in pages in use, after folding their WAL into them.

    Both sides of the read phase are measured the same way: a TRUNCATE checkpoint first (so a WAL left by one
    stop and emptied by the next is not counted as growth or shrinkage), then the pages in use, not the free
    list (a file reuses freed pages before it grows, and those reused pages do count)."""
    total = 0
    for path in sorted(folder.iterdir()):
        if not (path.name.startswith("db") and path.suffix == ".sqlite"):
            continue
        conn = sqlite3.connect(path)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            pages, free, size = (conn.execute(f"PRAGMA {p}").fetchone()[0]
                                 for p in ("page_count", "freelist_count", "page_size"))
        finally:
            conn.close()
        total += (pages - free) * size
    return total


def _server(folder: Path, port: int, *, open_mode: bool = False) -> subprocess.Popen[bytes]:
    # the soak outlives the default 1 h token lifetime: one day-long token, allowed for this server only
    env = {**os.environ, "KZFHIR_DEV_KEY_PATH": str(folder / "dev-jwks.json"),
           "KZFHIR_MAX_TOKEN_LIFETIME_SECONDS": "86400"}
    return start(["-m", "fhir_server.cli", "serve", "--port", str(port), "--database", str(folder / "db.sqlite"),
                  "--log-level", "warning", *(["--open"] if open_mode else [])], port, env=env)


def _consent(pid: str) -> dict:
    """The patient's consent for the soak's organisation (BIN): access, collection and correction (AC-12)."""
    actor = {"identifier": {"system": "https://fhir.kzfhir.kz/sid/bin", "value": BIN}}
    role = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRCP"}]}
    actions = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": a}]}
               for a in ("access", "collect", "correct")]
    return {"resourceType": "Consent", "id": f"c-{pid}", "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                  "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": f"Patient/{pid}"}, "dateTime": "2025-01-01",
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
            "provision": {"provision": [{"type": "permit", "actor": [{"role": role, "reference": actor}],
                                         "action": actions}]}}


def _seed(folder: Path, port: int) -> None:
    """Patients and their consents, loaded by an operator in open mode before the secured soak."""
    proc = _server(folder, port, open_mode=True)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as c:
            for i in range(PATIENTS):
                for res in ({"resourceType": "Patient", "id": f"p{i}", "name": [{"family": "Soak"}]},
                            _consent(f"p{i}")):
                    c.put(f"/{res['resourceType']}/{res['id']}", json=res, headers=JSON).raise_for_status()
    finally:
        stop(proc)


def _request(rng: random.Random, n: int) -> tuple[str, str, dict | None]:
    pid = f"p{rng.randrange(PATIENTS)}"
    roll = rng.random()
    if roll < 0.5:
        return "GET", f"/Patient/{pid}", None
    if roll < 0.7:
        return "GET", rng.choice([f"/Observation?subject=Patient/{pid}&_count=20", "/Patient?name=Soak&_count=20",
                                  f"/Observation?subject=Patient/{pid}&code=8867-4&_sort=-date"]), None
    if roll < 0.9:
        return "POST", "/Observation", {"resourceType": "Observation", "status": "final",
                                        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                                        "subject": {"reference": f"Patient/{pid}"},
                                        "valueQuantity": {"value": 60 + n % 40, "unit": "/min"}}
    return "PUT", f"/Patient/{pid}", {"resourceType": "Patient", "id": pid, "name": [{"family": "Soak",
                                                                                        "given": [str(n)]}]}


async def _one(client: httpx.AsyncClient, method: str, path: str, body: dict | None, minute: Minute) -> None:
    started = time.perf_counter()
    try:
        r = await client.request(method, path, json=body, headers=JSON if body else None)
    except httpx.HTTPError:
        minute.failures += 1
        return
    minute.latencies.append((time.perf_counter() - started) * 1000)
    if r.status_code >= 500:
        minute.errors += 1
    elif r.status_code >= 400:
        key = f"{method} {r.status_code}"
        minute.refused[key] = minute.refused.get(key, 0) + 1


async def _soak(url: str, token: str, pid: int, folder: Path, minutes: float, rate: float) -> list[Minute]:
    rng = random.Random(12)
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60, limits=limits) as client:
        out: list[Minute] = []
        start_db = _db_bytes(folder)
        t0 = time.perf_counter()
        pending: set[asyncio.Task[None]] = set()
        n = 0
        while (elapsed := time.perf_counter() - t0) < minutes * 60:
            index = int(elapsed // 60)
            while len(out) <= index:
                if out:
                    _report(len(out), out[-1], pid, _db_bytes(folder) - start_db)
                out.append(Minute())
            due = t0 + n / rate  # open loop: a fixed schedule, whatever the latency
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            method, path, body = _request(rng, n)
            task = asyncio.create_task(_one(client, method, path, body, out[index]))
            pending.add(task)
            task.add_done_callback(pending.discard)
            n += 1
        await asyncio.gather(*pending)
        _report(len(out), out[-1], pid, _db_bytes(folder) - start_db)
    return out


def _report(number: int, minute: Minute, pid: int, growth: int) -> None:
    refused = f"4xx {sum(minute.refused.values())}{minute.refused or ''}"
    print(f"minute {number:>2}: {len(minute.latencies):>5} requests, 5xx {minute.errors}, no answer {minute.failures}, "
          f"{refused}, "
          f"p99 {minute.p99():7.1f} ms, {_rss(pid)}, database +{growth / 1e6:6.1f} MB", flush=True)


async def _reads(url: str, token: str, count: int) -> None:
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
        for i in range(count):
            (await c.get(f"/Patient/p{i % PATIENTS}")).raise_for_status()


def _verify(folder: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "fhir_server.cli", "audit", "verify", "--database",
                           str(folder / "db.sqlite")], capture_output=True, text=True, timeout=600)
    return done.stdout.strip().splitlines()[0] if done.stdout.strip() else done.stderr.strip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench reliability")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=40.0, help="requests per second, fixed schedule")
    parser.add_argument("--reads", type=int, default=2000, help="reads of the bytes-per-audited-read phase")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        port = free_port()
        _seed(folder, port)
        proc = _server(folder, port)
        token = issue_dev_token("system", None, bin=BIN, key_path=folder / "dev-jwks.json", ttl_seconds=86_400)
        print(f"soak: {args.minutes:g} min at {args.rate:g} req/s, secure mode, 50 % reads, 20 % searches, "
              "20 % creates, 10 % updates", flush=True)
        minutes = asyncio.run(_soak(f"http://127.0.0.1:{port}", token, proc.pid, folder, args.minutes, args.rate))
        rss = _rss(proc.pid)
        stop(proc)
        total = sum(len(m.latencies) for m in minutes)
        errors = sum(m.errors for m in minutes)
        failures = sum(m.failures for m in minutes)
        worst = max(m.p99() for m in minutes)
        print(f"total: {total} requests, {errors} 5xx, {failures} without answer, worst minute p99 {worst:.1f} ms, "
              f"final {rss}, database {_db_bytes(folder) / 1e6:.1f} MB")
        print(f"audit verify: {_verify(folder)}")
        before = _used_bytes(folder)
        proc = _server(folder, port)
        asyncio.run(_reads(f"http://127.0.0.1:{port}", token, args.reads))
        stop(proc)
        print(f"bytes per audited read: {(_used_bytes(folder) - before) / args.reads:.0f} "
              f"({args.reads} reads on a restarted server; SQLite pages in use after a TRUNCATE checkpoint, "
              "before and after the phase)")
        print(f"audit verify after the read phase: {_verify(folder)}")


if __name__ == "__main__":
    main()
