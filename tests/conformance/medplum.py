"""Medplum's own FHIR router as an independent server for the kit (issue 18 "Proof"): ``@medplum/fhir-router``
over its in-memory ``MemoryRepository`` behind ``node:http`` (tools/peer-medplum/server.mjs, the npm packages
pinned by its package-lock.json, installed by ``make peer-medplum``). Nothing of kzfhir runs in it: the kit
reaches it over TCP exactly as it would reach a vendor's endpoint."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.live_server import free_port

PEER = Path(__file__).resolve().parents[2] / "tools" / "peer-medplum"
START_SECONDS = 90.0  # loading the R4 definitions takes ~5 s on a quiet machine; a loaded one is slower


def unavailable() -> str | None:
    """Why the Medplum router cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (PEER / "node_modules" / "@medplum" / "fhir-router").is_dir():
        return "the pinned Medplum packages are not installed (make peer-medplum)"
    return None


@contextmanager
def medplum_router(directory: Path) -> Iterator[str]:
    """The router on a free loopback port (its output in ``directory``); its base URL. Stopped on exit."""
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "medplum.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["node", "--experimental-websocket", "server.mjs", str(port)], cwd=PEER,
                                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "NODE_ENV": "test"})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the Medplum router exited ({proc.returncode}): {log.read_text(errors='replace')}")
            try:
                if httpx.get(f"{base}/metadata", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass  # not listening yet: poll again until the deadline
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Medplum router did not answer within {START_SECONDS:.0f} s")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
