"""Where ``kzfhir load`` sends its requests: any FHIR server by URL (plain httpx, the integrator's
case), or a database file through this server's application run in-process — the same routes,
validation, access policy and audit as over HTTP, never SQL written from the side."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

IN_PROCESS_BASE = "http://kzfhir.in-process"
TIMEOUT = httpx.Timeout(120.0, connect=10.0)  # a large transaction may take a while to commit


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


@asynccontextmanager
async def remote(base: str, token: str | None, concurrency: int) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base.rstrip("/") + "/", headers=_auth(token), timeout=TIMEOUT,
                                 limits=limits) as client:
        yield client


@asynccontextmanager
async def in_process(database: Path, token: str | None, *, open_mode: bool = False, dev_key: Path | None = None
                     ) -> AsyncIterator[httpx.AsyncClient]:
    """The server's app on ``database`` (settings from the environment, as ``kzfhir serve``)."""
    from fhir_server.api.app import create_app
    from fhir_server.config import Settings

    overrides: dict[str, object] = {"database": database}
    if dev_key is not None:
        overrides["dev_key_path"] = dev_key
    if open_mode:
        print(f"WARNING: loading into {database} with security OFF: no access policy, no audit trail. "
              "Development databases only.", file=sys.stderr)
        overrides["security_enabled"] = False
    app = create_app(Settings(**overrides))  # type: ignore[arg-type]
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=IN_PROCESS_BASE + "/", headers=_auth(token), timeout=TIMEOUT
    ) as client:
        yield client
