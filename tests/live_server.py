"""A real ``kzfhir serve`` process on a free loopback port, for tests that kill or restart it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(db: Path, port: int, *, open_mode: bool = True, dev_keys: Path | None = None
                 ) -> subprocess.Popen[bytes]:
    """Start the server on ``db`` and wait until ``/metadata`` answers; ``dev_keys`` is the development
    signing key a secured server trusts."""
    cmd = [sys.executable, "-m", "fhir_server.cli", "serve", "--port", str(port), "--database", str(db),
           "--log-level", "warning", *(["--open"] if open_mode else [])]
    env = {**os.environ, **({"KZFHIR_DEV_KEY_PATH": str(dev_keys)} if dev_keys else {})}
    # stderr to a file, not a pipe nobody reads: a server that logs more than a pipe holds (64 KiB) would
    # block on its next log line and look hung
    with tempfile.TemporaryFile() as log:  # the child keeps its own descriptor of it
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=env)
        deadline = time.monotonic() + 90  # a loaded CI machine starts slowly: only the limit, never the usual wait
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/metadata", timeout=1).status_code == 200:
                    return proc
            except httpx.HTTPError:
                time.sleep(0.1)
        proc.kill()
        proc.wait()
        log.seek(0)
        raise RuntimeError("server did not start: " + log.read().decode(errors="replace"))


def wait_until_up(port: int, path: str = "/health", seconds: float = 60) -> None:
    """Wait until a server started otherwise (own folder, own environment) answers ``path`` with 200."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing answered http://127.0.0.1:{port}{path}")
