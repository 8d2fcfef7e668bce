"""Every shell block marked runnable (a fenced block opened with three backticks and ``sh runnable``) in
README.md and docs/ runs verbatim against a live server in the secure default (issue 13 item 7: README
commands failed as written). The blocks run in order, in a folder of their own that sees the repository's
.venv, fhir_server and tests, with 127.0.0.1:8080 replaced by the test server's port."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.live_server import free_port, wait_until_up

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```sh runnable\n(.*?)^```", re.MULTILINE | re.DOTALL)
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _blocks() -> list[tuple[str, str]]:
    return [(f"{p.relative_to(ROOT)}#{n}", b) for p in DOCS for n, b in enumerate(BLOCK.findall(p.read_text(
        encoding="utf-8")))]


def test_the_readme_has_runnable_blocks() -> None:
    assert len([name for name, _ in _blocks() if name.startswith("README.md")]) >= 3


@pytest.mark.slow
def test_every_runnable_block_runs_verbatim(tmp_path: Path) -> None:
    for name in (".venv", "fhir_server", "tests"):
        (tmp_path / name).symlink_to(ROOT / name)
    port = free_port()
    env = {**os.environ, "KZFHIR_SYNCHRONOUS_FULL": "false"}
    for variable in ("KZFHIR_DATABASE", "KZFHIR_DEV_KEY_PATH", "KZFHIR_HOST", "KZFHIR_PORT", "KZFHIR_TOKEN"):
        env.pop(variable, None)
    server = subprocess.Popen([sys.executable, "-m", "fhir_server.cli", "serve", "--port", str(port),
                               "--log-level", "warning"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        wait_until_up(port, "/ready")
        for name, block in _blocks():
            script = block.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
            done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=tmp_path,
                                  env={**env, "KZFHIR_PORT": str(port)},  # as for a server on another port
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, f"{name} failed:\n{block}\n--- stdout\n{done.stdout[-2000:]}\n" \
                                         f"--- stderr\n{done.stderr[-2000:]}"
    finally:
        server.terminate()
        server.wait(timeout=30)
