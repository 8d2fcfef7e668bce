"""Bulk export over real HTTP (ASGI transport): apps with the bulk routes, and helpers that kick off,
poll and download exports the way a Bulk Data client does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest

from fhir_server.api.app import create_app
from fhir_server.api.routes import bulk
from fhir_server.config import Settings
from fhir_server.operations.export import recover_jobs
from tests.conftest import BASE

FHIR_JSON = {"content-type": "application/fhir+json"}
ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
IIN_SYSTEM = "https://fhir.kzfhir.kz/sid/iin"


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A started server: lifespan, then ``recover_jobs`` (idempotent, whether or not the lifespan
    already ran it), then a client."""
    app = create_app(settings)
    bulk.ensure_routes(app.app)  # until api/app.py includes the bulk router itself
    async with app.router.lifespan_context(app.app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE, timeout=60
    ) as client:
        await recover_jobs(app.state.services.store, app.state.services.settings)
        client.app = app  # type: ignore[attr-defined]
        yield client


@pytest.fixture
async def open_server(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings) as client:
        yield client


async def put_all(client: httpx.AsyncClient, resources: list[dict[str, Any]], headers: dict[str, str] | None = None
                  ) -> None:
    for res in resources:
        r = await client.put(f"/{res['resourceType']}/{res['id']}", json=res, headers={**FHIR_JSON, **(headers or {})})
        assert r.status_code in (200, 201), r.text


async def kick_off(client: httpx.AsyncClient, path: str, headers: dict[str, str] | None = None,
                   body: dict[str, Any] | None = None) -> str:
    """Start an export; the status URL from Content-Location."""
    hdrs = {**ASYNC, **(headers or {})}
    if body is None:
        r = await client.get(path, headers=hdrs)
    else:
        r = await client.post(path, json=body, headers={**hdrs, **FHIR_JSON})
    assert r.status_code == 202, r.text
    return str(r.headers["content-location"])


async def wait_done(client: httpx.AsyncClient, status_url: str, headers: dict[str, str] | None = None,
                    timeout: float = 30.0) -> httpx.Response:
    """Poll until the job is no longer 202 (in progress)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        r = await client.get(status_url, headers=headers or {})
        if r.status_code != 202:
            return r
        assert r.headers.get("x-progress")
        assert asyncio.get_running_loop().time() < deadline, "export did not finish in time"
        await asyncio.sleep(0.02)


async def export(client: httpx.AsyncClient, path: str, headers: dict[str, str] | None = None,
                 body: dict[str, Any] | None = None) -> dict[str, Any]:
    """Kick off, wait, and return the manifest (asserting 200)."""
    status_url = await kick_off(client, path, headers, body)
    r = await wait_done(client, status_url, headers)
    assert r.status_code == 200, r.text
    manifest: dict[str, Any] = r.json()
    return manifest


async def download(client: httpx.AsyncClient, entries: list[dict[str, Any]], headers: dict[str, str] | None = None
                   ) -> dict[str, list[dict[str, Any]]]:
    """Every file of a manifest section, parsed line by line, grouped by type (counts checked)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        r = await client.get(entry["url"], headers=headers or {})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/fhir+ndjson")
        lines = r.content.split(b"\n")
        assert lines[-1] == b""  # every line, the last included, ends with a newline
        resources = [orjson.loads(line) for line in lines[:-1]]
        assert len(resources) == entry["count"]
        assert all(res["resourceType"] == entry["type"] for res in resources)
        out.setdefault(entry["type"], []).extend(resources)
    return out
