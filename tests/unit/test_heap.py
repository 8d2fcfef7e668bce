"""The start-up heap is frozen once per process (fhir_server/heap.py), by the application's start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import asyncio, gc, tempfile
from pathlib import Path
from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.heap import freeze_start_up_heap

async def main():
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(database=Path(tmp) / "db.sqlite", security_enabled=False))
        assert gc.get_freeze_count() == 0
        async with app.router.lifespan_context(app.app):
            frozen = gc.get_freeze_count()
            assert frozen > 100_000, frozen  # the definitions, validators and extractors at least
        again = create_app(Settings(database=Path(tmp) / "db2.sqlite", security_enabled=False))
        async with again.router.lifespan_context(again.app):
            assert gc.get_freeze_count() <= frozen  # a second application in the process freezes nothing more
        assert freeze_start_up_heap() is False
    print("ok")

asyncio.run(main())
"""


def test_the_first_application_start_freezes_the_heap_once() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[2], check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")
