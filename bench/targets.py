"""The servers the side-by-side benchmarks start: kzfhir (open or secure, SQLite or PostgreSQL, N workers),
the Medplum peer (tools/peer-medplum, installed by ``make peer-medplum``) and the raw-ASGI ceiling
(bench/ceiling.py). Each on a free loopback port, optionally pinned to a CPU list."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench import server
from bench.workload import PRACTITIONER, Workload

ROOT = Path(__file__).resolve().parent.parent
PEER = ROOT / "tools" / "peer-medplum"
JSON = {"content-type": "application/fhir+json", "prefer": "return=minimal"}


class PeerMissing(RuntimeError):
    """The Medplum peer is not installed (`make peer-medplum`); the message says what is missing."""


def peer_command(port: int) -> list[str]:
    """``node server.mjs PORT`` of the peer, with Node 20's WebSocket flag (Medplum reads it at load)."""
    node = shutil.which("node")
    if node is None or not (PEER / "node_modules" / "@medplum" / "fhir-router").is_dir():
        raise PeerMissing("the Medplum peer is not installed: run `make peer-medplum` (needs node and npm)")
    major = int(subprocess.run([node, "-p", "process.versions.node.split('.')[0]"], capture_output=True,
                               text=True, check=True).stdout)
    flags = ["--experimental-websocket", "--no-warnings"] if major < 22 else []
    return [node, *flags, str(PEER / "server.mjs"), str(port)]


@contextmanager
def medplum(*, cpus: str | None, log: Path | None = None) -> Iterator[int]:
    port = server.free_port()
    proc = server.start(peer_command(port), port, python=False, cpus=cpus, log=log)
    try:
        yield port
    finally:
        server.stop(proc)


@contextmanager
def ceiling(sizes: dict[str, int], folder: Path, *, cpus: str | None) -> Iterator[int]:
    """The same ASGI server (uvicorn, uvloop, httptools) answering each path with bytes of its size."""
    port = server.free_port()
    sizes_file = folder / "ceiling-sizes.json"
    sizes_file.write_text(json.dumps(sizes))
    proc = server.start(["-m", "bench.ceiling", str(port), str(sizes_file), "asgi"], port, probe="/x/y", cpus=cpus)
    try:
        yield port
    finally:
        server.stop(proc)


def kzfhir_env(folder: Path) -> dict[str, str]:
    return {**os.environ, "KZFHIR_DEV_KEY_PATH": str(folder / "dev-jwks.json")}


@contextmanager
def kzfhir(database: str, folder: Path, *, open_mode: bool, cpus: str | None = None, workers: int = 1,
           log: Path | None = None) -> Iterator[int]:
    """``kzfhir serve`` (validation on; SQLite with synchronous=FULL, the default) on ``database``."""
    port = server.free_port()
    cmd = ["-m", "fhir_server.cli", "serve", "--port", str(port), "--database", database, "--log-level", "warning"]
    if workers != 1:
        cmd += ["--workers", str(workers)]
    proc = server.start([*cmd, *(["--open"] if open_mode else [])], port, env=kzfhir_env(folder), cpus=cpus,
                        log=log)
    try:
        yield port
    finally:
        server.stop(proc)


def register(port: int, work: Workload) -> None:
    """The secure case's registrations (each Patient with its Consent, and the reading practitioner), written by
    an operator in open mode before the secured server starts: what the MIS registered earlier."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as c:
        practitioner = {"resourceType": "Practitioner", "id": PRACTITIONER, "name": [{"family": "Bench"}]}
        for resource in [practitioner, *work.registrations]:
            answer = c.put(f"/{resource['resourceType']}/{resource['id']}", json=resource, headers=JSON)
            if answer.status_code >= 300:
                raise RuntimeError(f"registering {resource['resourceType']}/{resource['id']}: "
                                   f"{answer.status_code} {answer.text[:300]}")


def tokens(folder: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(the MIS system token's headers, the practitioner's) signed by the dev key of ``folder``."""
    from bench.workload import BIN
    from fhir_server.security.auth import issue_dev_token

    key = folder / "dev-jwks.json"
    system = issue_dev_token("system", None, key_path=key, bin=BIN)
    doctor = issue_dev_token("practitioner", f"Practitioner/{PRACTITIONER}", key_path=key)
    return {"Authorization": f"Bearer {system}"}, {"Authorization": f"Bearer {doctor}"}


def sizes(port: int, paths: list[str], headers: dict[str, str] | None = None) -> dict[str, int]:
    """The body size of each path as the server answers it (for the ceiling's bytes)."""
    out = {}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, headers=headers) as c:
        for path in paths:
            out[path] = len(c.get(path, headers={"accept": "application/fhir+json"}).content)
    return out
