"""What a conformance-kit run started with ``$conformance-run`` costs the server it runs in (issue 17's console):
the kit runs in the server's event loop (operations/conformance_runs.py), so its own work competes with the
server's requests while it lasts. One in-process server, secured and national strict, on SQLite; a client
reads one Organization by id in a loop, first alone, then while a full kit run (every check) goes on.

Printed: the run's wall time and the verdict the kit gave; the reads' latency (median, p95, max) alone and
during the run; the process CPU time of the whole run (the kit's work plus the server's answers to it).

    .venv/bin/python -m bench.bench_kit_run
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.security.auth import issue_dev_token

BASE = "http://kzfhir.bench"
BIN = "940140000385"


async def _reads(client: httpx.AsyncClient, path: str, headers: dict[str, str], until: asyncio.Event | float
                 ) -> list[float]:
    took: list[float] = []
    while (time.perf_counter() < until) if isinstance(until, float) else not until.is_set():
        began = time.perf_counter()
        answer = await client.get(path, headers=headers)
        took.append((time.perf_counter() - began) * 1000)
        assert answer.status_code == 200, answer.text
        await asyncio.sleep(0.02)
    return took


def _line(label: str, took: list[float]) -> str:
    took = sorted(took)
    p95 = took[int(len(took) * 0.95) - 1] if len(took) >= 20 else took[-1]
    return (f"{label}: {len(took)} reads, median {statistics.median(took):.1f} ms, p95 {p95:.1f} ms, "
            f"max {took[-1]:.1f} ms")


async def _run(tmp: Path) -> None:
    settings = Settings(database=tmp / "bench.sqlite", synchronous_full=False, dev_key_path=tmp / "k.json",
                        require_kz_profiles=True)
    app = create_app(settings)
    writer = {"Authorization": f"Bearer {issue_dev_token('system', None, bin=BIN, key_path=tmp / 'k.json')}",
              "content-type": "application/fhir+json"}
    admin = {"Authorization": f"Bearer {issue_dev_token('admin', 'Practitioner/adm1', key_path=tmp / 'k.json')}"}
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE, timeout=120) as client:
        org = {"resourceType": "Organization", "name": "Bench clinic",
               "identifier": [{"system": "https://fhir.kzfhir.kz/sid/bin", "value": BIN}]}
        created = await client.post("/Organization", json=org, headers=writer)
        assert created.status_code == 201, created.text
        path = f"/Organization/{created.json()['id']}"
        alone = await _reads(client, path, writer, time.perf_counter() + 10.0)
        cpu, began = time.process_time(), time.perf_counter()
        body = {"resourceType": "Parameters", "parameter": [
            {"name": "writer", "valueString": writer["Authorization"].removeprefix("Bearer ")}]}
        started = await client.post("/$conformance-run", json=body, headers=admin)
        assert started.status_code == 202, started.text
        done = asyncio.Event()
        reading = asyncio.create_task(_reads(client, path, writer, done))
        while (answer := await client.get(started.headers["Content-Location"], headers=admin)).status_code == 202:
            await asyncio.sleep(0.5)
        done.set()
        during = await reading
        wall, spent = time.perf_counter() - began, time.process_time() - cpu
        verdict = next(p.get("valueString") for p in answer.json()["parameter"] if p["name"] == "verdict")
    print(f"full kit run: {wall:.1f} s wall, {spent:.1f} s process CPU; verdict: {verdict}")
    print(_line("reads alone", alone))
    print(_line("reads during the run", during))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_run(Path(tmp)))


if __name__ == "__main__":
    main()
