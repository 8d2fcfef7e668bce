"""``kzfhir load`` throughput on the 75 Synthea bundles (issue 13 item 2), side by side with a plain
loop of POSTs — what an integrator writes first: one bundle after the other on one connection.

Each run gets a fresh open-mode server (validation on, synchronous=FULL), so both write the same data
into an empty database. Figures go to docs/performance.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time

import httpx

from bench import server
from tests.data import SYNTHEA, synthea_bundle_bytes


def _fresh(tmp: str, name: str) -> tuple[int, subprocess.Popen[bytes]]:
    port = server.free_port()
    proc = server.start(["-m", "fhir_server.cli", "serve", "--open", "--port", str(port), "--database",
                         f"{tmp}/{name}.sqlite", "--log-level", "warning"], port)
    return port, proc


def _plain_loop(port: int) -> tuple[int, float]:
    bundles = synthea_bundle_bytes()
    count = 0
    headers = {"content-type": "application/fhir+json"}
    started = time.perf_counter()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as c:
        for body in bundles:
            r = c.post("/", content=body, headers=headers)
            r.raise_for_status()
            count += len(r.json()["entry"])
    return count, time.perf_counter() - started


def _kzfhir_load(port: int, tmp: str, concurrency: int) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-m", "fhir_server.cli", "load", str(SYNTHEA), "--base",
                           f"http://127.0.0.1:{port}", "--json", "--progress", "none", "--concurrency",
                           str(concurrency), "--failures", f"{tmp}/failures.ndjson"],
                          capture_output=True, text=True, check=True)
    summary: dict[str, float] = json.loads(done.stdout)
    return summary


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        port, proc = _fresh(tmp, "loop")
        try:
            count, seconds = _plain_loop(port)
        finally:
            server.stop(proc)
        print(f"plain loop of POSTs (1 connection):  {count:,} resources in {seconds:5.1f} s = "
              f"{count / seconds:7,.0f} resources/s")
        for concurrency in (1, 4):
            port, proc = _fresh(tmp, f"load{concurrency}")
            try:
                s = _kzfhir_load(port, tmp, concurrency)
            finally:
                server.stop(proc)
            print(f"kzfhir load --concurrency {concurrency}:        {int(s['loaded']):,} resources in "
                  f"{s['seconds']:5.1f} s = {s['resourcesPerSecond']:7,.0f} resources/s "
                  f"({int(s['failed'])} failed, {int(s['retries'])} retries)")
