"""``kzfhir load`` against a real ``kzfhir serve`` over HTTP: the shipped Synthea data goes in whole, and
a server that is not up yet is waited for as a transient failure (issue 13 item 2)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.data import SYNTHEA, load_gz, synthea_bundles
from tests.live_server import free_port, start_server

ROOT = Path(__file__).resolve().parents[2]


def _load_command(port: int, tmp_path: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "fhir_server.cli", "load", str(SYNTHEA), "--base", f"http://127.0.0.1:{port}",
            "--json", "--failures", str(tmp_path / "failures.ndjson"), *extra]


@pytest.mark.slow
def test_synthea_loads_whole_into_a_live_server(tmp_path: Path) -> None:
    expected = Counter(e["resource"]["resourceType"] for p in synthea_bundles() for e in load_gz(p)["entry"])
    port = free_port()
    server = start_server(tmp_path / "db.sqlite", port)
    try:
        run = subprocess.run(_load_command(port, tmp_path, "--concurrency", "4", "--progress", "lines"),
                             capture_output=True, text=True, timeout=600, cwd=ROOT)
        assert run.returncode == 0, run.stderr
        summary = json.loads(run.stdout)
        assert summary["files"] == 75
        assert summary["requests"] == 75
        assert summary["loaded"] == sum(expected.values()) == 25150
        assert summary["failed"] == 0
        assert summary["failures"] is None and not (tmp_path / "failures.ndjson").exists()
        assert summary["resourcesPerSecond"] > 0
        for rtype in ("Patient", "Encounter", "Observation"):
            found = httpx.get(f"http://127.0.0.1:{port}/{rtype}?_summary=count", timeout=30).json()
            assert found["total"] == expected[rtype], rtype
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_a_server_still_starting_is_waited_for(tmp_path: Path) -> None:
    port = free_port()
    one = tmp_path / "one"
    one.mkdir()
    bundle = synthea_bundles()[0]
    (one / bundle.name).write_bytes(bundle.read_bytes())
    command = _load_command(port, tmp_path, "--retries", "8")
    command[command.index(str(SYNTHEA))] = str(one)
    loader = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    time.sleep(1.5)  # the loader finds nobody listening, and backs off
    server = start_server(tmp_path / "db.sqlite", port)
    try:
        out, err = loader.communicate(timeout=300)
        assert loader.returncode == 0, err
        summary = json.loads(out)
        assert summary["loaded"] == len(load_gz(bundle)["entry"])
        assert summary["failed"] == 0
    finally:
        server.terminate()
        server.wait(timeout=30)
