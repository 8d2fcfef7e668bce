"""Start and stop real server processes for benchmarks (loopback only)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cpus: str | None) -> list[str]:
    """``taskset -c CPUS`` to prefix a command with, when asked and possible (Linux, util-linux)."""
    if cpus is None or shutil.which("taskset") is None:
        return []
    return ["taskset", "-c", cpus]


def split_cpus() -> tuple[str | None, set[int] | None]:
    """(the server's CPU list for taskset, the driver's CPU set): one core for the server, the others for the
    driver, as the peer harness measures; (None, None) on a one-core machine (no pinning)."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2:
        return None, None
    return str(cpus[0]), set(cpus[1:])


def start(cmd: Sequence[str], port: int, probe: str = "/metadata", env: dict[str, str] | None = None, *,
          python: bool = True, cpus: str | None = None, log: Path | None = None, wait: float = 120.0,
          ) -> subprocess.Popen[bytes]:
    """``cmd`` run by this Python (``python``) or as it is, pinned to ``cpus``; returns once ``probe`` answers."""
    argv = [*pinned(cpus), *([sys.executable] if python else []), *cmd]
    sink = log.open("ab") if log is not None else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(argv, stdout=sink, stderr=sink, env=env)
    finally:
        if log is not None:
            sink.close()  # type: ignore[union-attr]
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=2).status_code < 500:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    proc.wait()
    tail = log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""
    raise RuntimeError(f"server {' '.join(argv)} did not start{': ' + tail if tail else ''}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
