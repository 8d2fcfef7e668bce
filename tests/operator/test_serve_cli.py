"""``kzfhir serve`` honours KZFHIR_HOST/KZFHIR_PORT, refuses impossible ports and log levels in one line,
has --version, and --open keeps away from the secure server's database (issue 13)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from fhir_server import __version__
from tests.live_server import free_port, wait_until_up


def _kzfhir(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fhir_server.cli", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})}, cwd=cwd)


def test_version() -> None:
    run = _kzfhir("--version")
    assert run.returncode == 0 and run.stdout.strip() == f"kzfhir {__version__}"


def test_bad_port_log_level_and_setting_are_one_line_exit_2() -> None:
    for args, env, message in ((["serve", "--port", "99999"], {}, "port must be a number from 1 to 65535"),
                               (["serve", "--log-level", "foo"], {}, "invalid choice: 'foo'"),
                               (["serve"], {"KZFHIR_PORT": "99999"}, "KZFHIR_PORT='99999'")):
        run = _kzfhir(*args, env=env)
        assert run.returncode == 2, run.stderr
        assert len(run.stderr.strip().splitlines()) == 1 and message in run.stderr, run.stderr


def test_environment_port_is_honoured_and_open_mode_has_its_own_database(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "KZFHIR_PORT": str(port), "KZFHIR_HOST": "127.0.0.1", "KZFHIR_SYNCHRONOUS_FULL": "false"}
    env.pop("KZFHIR_DATABASE", None)
    proc = subprocess.Popen([sys.executable, "-m", "fhir_server.cli", "serve", "--open", "--log-level", "warning"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_up(port, "/health")
        assert httpx.get(f"http://127.0.0.1:{port}/Patient", timeout=5).status_code == 200  # open mode
        assert (tmp_path / "data" / "open.sqlite").exists()
        assert not (tmp_path / "data" / "kzfhir.sqlite").exists()
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "OPEN MODE" in err and "data/open.sqlite" in err


def test_a_second_server_on_the_same_database_is_refused_at_start(tmp_path: Path) -> None:
    """Issue 11 §3: a second `kzfhir serve` on one SQLite file broke the first (every write then 500)."""
    port = free_port()
    env = {**os.environ, "KZFHIR_DATABASE": str(tmp_path / "one.sqlite"), "KZFHIR_SYNCHRONOUS_FULL": "false"}
    first = subprocess.Popen([sys.executable, "-m", "fhir_server.cli", "serve", "--open", "--port", str(port),
                              "--log-level", "warning"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        wait_until_up(port, "/health")
        second = _kzfhir("serve", "--open", "--port", str(free_port()), env=env, cwd=tmp_path)
        assert second.returncode == 2, second.stderr
        lines = second.stderr.strip().splitlines()
        assert f"is in use by another kzfhir process (pid {first.pid})" in lines[-1], second.stderr
        r = httpx.post(f"http://127.0.0.1:{port}/Patient", json={"resourceType": "Patient", "gender": "male"},
                       headers={"content-type": "application/fhir+json"}, timeout=10)
        assert r.status_code == 201  # the first server is unharmed
    finally:
        first.terminate()
        first.wait(timeout=30)
    again = subprocess.Popen([sys.executable, "-m", "fhir_server.cli", "serve", "--open", "--port", str(port),
                              "--log-level", "warning"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        wait_until_up(port, "/health")  # the lock went with its process
    finally:
        again.terminate()
        again.wait(timeout=30)
