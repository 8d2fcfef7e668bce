"""Foundation benchmark (issue 2): Synthea transaction ingest over HTTP with 4 concurrent clients, then
read-by-id at 32 connections beside the ceiling of the same ASGI server serving bytes of the same size.

Targets on a 2-core machine, validation on: ingest >= 2,000 resources/s; read >= 50 % of the ceiling,
p99 < 20 ms.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench import server
from bench.loadgen import run_load
from tests.data import synthea_bundle_bytes


async def _ingest(port: int, bundles: list[bytes], clients: int = 4) -> tuple[int, float, list[str]]:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for b in bundles:
        queue.put_nowait(b)
    locations: list[str] = []
    count = 0
    headers = {"content-type": "application/fhir+json", "prefer": "return=minimal"}

    async def client() -> None:
        nonlocal count
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=300) as c:
            while not queue.empty():
                body = queue.get_nowait()
                r = await c.post("/", content=body, headers=headers)
                r.raise_for_status()
                entries = r.json()["entry"]
                count += len(entries)
                locations.extend(e["response"]["location"].split("/_history")[0] for e in entries)

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return count, time.perf_counter() - t0, locations


def _read_paths(port: int, locations: list[str]) -> dict[str, int]:
    """2,000 read targets spread over the load (Patients, Encounters, Observations) and their sizes."""
    picks = [loc for loc in locations if loc.startswith(("Patient/", "Observation/", "Encounter/"))][::7][:2000]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
        return {f"/{p}": len(c.get(f"/{p}").content) for p in picks}


def _load(port: int, paths: list[str]) -> object:
    return asyncio.run(run_load("127.0.0.1", port, paths, connections=32, seconds=8))


def main() -> None:
    bundles = synthea_bundle_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        port = server.free_port()
        proc = server.start(["-m", "fhir_server.cli", "serve", "--open", "--port", str(port), "--database",
                             f"{tmp}/bench.sqlite", "--log-level", "warning"], port)
        try:
            count, seconds, locations = asyncio.run(_ingest(port, bundles))
            print(f"(a) ingest: {count} resources in {seconds:.1f} s = {count / seconds:,.0f} resources/s "
                  f"(75 Synthea transactions, 4 concurrent clients, validation on, synchronous=FULL)")
            sizes = _read_paths(port, locations)
            paths = list(sizes)
            ours = _load(port, paths)
        finally:
            server.stop(proc)
        results = {"kzfhir read": ours}
        sizes_file = Path(tmp) / "sizes.json"
        sizes_file.write_text(json.dumps(sizes))
        for kind in ("fastapi", "asgi"):
            port = server.free_port()
            proc = server.start(["-m", "bench.ceiling", str(port), str(sizes_file), kind], port, probe="/Basic/1")
            try:
                results[f"ceiling ({kind})"] = _load(port, paths)
            finally:
                server.stop(proc)
    size = int(statistics.median(sizes.values()))
    for label, res in results.items():
        print(f"(b) {res.line(label)}")  # type: ignore[attr-defined]
    base = results["kzfhir read"].rps  # type: ignore[attr-defined]
    for kind in ("fastapi", "asgi"):
        ceiling = results[f"ceiling ({kind})"].rps  # type: ignore[attr-defined]
        print(f"    ratio vs ceiling ({kind}; same body size per path, median {size} B): {base / ceiling:.0%}")
