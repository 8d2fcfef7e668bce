"""Bulk export benchmark: the 75 Synthea bundles posted as transactions into a fresh open-mode server
(in-process, real HTTP through the ASGI transport), then timed from kick-off to the complete manifest:

* system ``$export`` of everything (plain NDJSON: stored bytes copied into the files);
* ``Patient/$export`` (compartment filter: every resource parsed);
* ``Patient/$export?_type=Patient,Observation&_deidentify=true`` (AC-19 rewriting of every resource);
* downloading the files of the first export.

Figures are resources per second of the whole job (read, filter, write, record). Bounded well under 60 s.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from fhir_server.api.app import create_app
from fhir_server.api.routes import bulk
from fhir_server.config import Settings
from tests.data import synthea_bundle_bytes

BASE = "http://kzfhir.bench"
ASYNC = {"Prefer": "respond-async"}


async def _ingest(client: httpx.AsyncClient, bundles: list[bytes], clients: int = 4) -> int:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for bundle in bundles:
        queue.put_nowait(bundle)
    count = 0

    async def worker() -> None:
        nonlocal count
        while not queue.empty():
            r = await client.post("/", content=queue.get_nowait(),
                                  headers={"content-type": "application/fhir+json", "prefer": "return=minimal"})
            r.raise_for_status()
            count += len(r.json()["entry"])

    await asyncio.gather(*(worker() for _ in range(clients)))
    return count


async def _export(client: httpx.AsyncClient, path: str) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    r = await client.get(path, headers=ASYNC)
    r.raise_for_status()
    status_url = r.headers["content-location"]
    while (r := await client.get(status_url)).status_code == 202:
        await asyncio.sleep(0.01)
    r.raise_for_status()
    return r.json(), time.perf_counter() - started


async def _download(client: httpx.AsyncClient, manifest: dict[str, Any]) -> tuple[int, float]:
    started = time.perf_counter()
    size = 0
    for entry in manifest["output"]:
        r = await client.get(entry["url"])
        r.raise_for_status()
        size += len(r.content)
    return size, time.perf_counter() - started


def _line(label: str, manifest: dict[str, Any], seconds: float) -> str:
    n = sum(o["count"] for o in manifest["output"])
    return f"{label:<46} {n:>7} resources in {seconds:6.2f} s = {n / seconds:>9,.0f} resources/s"


async def _run(tmp: str) -> None:
    os.environ.setdefault("KZFHIR_EXPORT_DEIDENTIFY_SECRET", "bench-only-secret-0123456789")
    settings = Settings(database=Path(tmp) / "bench.sqlite", synchronous_full=False, security_enabled=False)
    app = create_app(settings)
    bulk.ensure_routes(app.app)
    bundles = synthea_bundle_bytes()
    async with app.router.lifespan_context(app.app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE, timeout=120
    ) as client:
        t0 = time.perf_counter()
        loaded = await _ingest(client, bundles)
        print(f"loaded {len(bundles)} bundles, {loaded} entries in {time.perf_counter() - t0:.1f} s")
        system, seconds = await _export(client, "/$export")
        print(_line("system $export (all types)", system, seconds))
        patients, seconds = await _export(client, "/Patient/$export")
        print(_line("Patient/$export (compartment filter)", patients, seconds))
        deid, seconds = await _export(client, "/Patient/$export?_type=Patient,Observation&_deidentify=true")
        print(_line("Patient,Observation with _deidentify=true", deid, seconds))
        size, seconds = await _download(client, system)
        print(f"{'download of the system export files':<46} {size / 1e6:>7.1f} MB in {seconds:6.2f} s "
              f"= {size / 1e6 / seconds:>9,.1f} MB/s")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_run(tmp))


if __name__ == "__main__":
    main()
