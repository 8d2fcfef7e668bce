"""A real ``kzfhir serve`` process for the hardening tests, its log in a file (a pipe could fill and
stall the server under the thousands of lines a hostile run writes)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.live_server import free_port


class Live:
    def __init__(self, port: int, log: Path, proc: subprocess.Popen[bytes]) -> None:
        self.port, self.log, self.proc = port, log, proc
        self.url = f"http://127.0.0.1:{port}"

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=15)

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return httpx.get(self.url + path, timeout=60, **kwargs)  # type: ignore[arg-type]


@contextmanager
def serving(folder: Path, env: dict[str, str] | None = None, *, open_mode: bool = True) -> Iterator[Live]:
    port, log = free_port(), folder / "server.log"
    cmd = [sys.executable, "-m", "fhir_server.cli", "serve", "--port", str(port), "--database",
           str(folder / "db.sqlite"), "--log-level", "info", *(["--open"] if open_mode else [])]
    environment = {**os.environ, "KZFHIR_DEV_KEY_PATH": str(folder / "dev-jwks.json"), **(env or {})}
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=environment)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/metadata", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("server did not start: " + log.read_text()) from None
                time.sleep(0.2)
        yield Live(port, log, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
