"""``kzfhir serve --workers N`` (issue 11 §3): N processes on one port and one PostgreSQL database keep
FHIR's semantics, share the keys a request may meet on any of them, come back when one dies, and stop
together; on SQLite the flag is refused at start (one process per file)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from fhir_server.config import Settings
from fhir_server.security.auth import issue_dev_token
from tests.live_server import free_port
from tests.pg import fresh_database, release_database
from tests.security_http.conftest import FHIR_JSON, SEED, _seed

pytestmark = pytest.mark.req("AC-03")


def _children(pid: int) -> list[int]:
    """The worker processes of ``pid`` (Linux /proc): its spawned children, not multiprocessing's
    resource tracker."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
                found.append(int(child))
    return found


def _until(condition: object, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[bytes], str, dict[str, str]]]:
    database = fresh_database("workers")
    keys = tmp_path_factory.mktemp("workers") / "jwks.json"
    asyncio.run(_seed(Settings(database=database, dev_key_path=keys, security_enabled=False), SEED))
    port = free_port()
    cmd = [sys.executable, "-m", "fhir_server.cli", "serve", "--workers", "2", "--port", str(port),
           "--database", database, "--log-level", "warning"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "KZFHIR_DEV_KEY_PATH": str(keys)})
    base = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            try:
                return httpx.get(f"{base}/health", timeout=1).status_code == 200 and len(_children(proc.pid)) >= 2
            except httpx.HTTPError:
                return False
        _until(up, 120)
        admin = {"Authorization": "Bearer " + issue_dev_token("admin", None, key_path=keys),
                 **FHIR_JSON}
        yield proc, base, admin
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(60)
        release_database(database)


def test_more_than_one_worker_on_sqlite_is_refused_at_start(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "fhir_server.cli", "serve", "--workers", "2", "--database",
                           str(tmp_path / "one.sqlite"), "--port", str(free_port())],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "PostgreSQL" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "one.sqlite").exists()  # refused before anything was opened


def test_conditional_creates_across_workers_make_one_resource(workers) -> None:
    _, base, admin = workers
    body = {"resourceType": "Organization", "name": "Емхана",
            "identifier": [{"system": "http://example.org/test-org", "value": "one-of-many"}]}
    criteria = "identifier=http://example.org/test-org|one-of-many"

    def create(_: int) -> tuple[int, str]:
        with httpx.Client(timeout=60) as http:  # a new connection each: either worker may take it
            r = http.post(f"{base}/Organization", json=body, headers={**admin, "If-None-Exist": criteria})
            return r.status_code, r.json().get("id", "")

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(create, range(32)))
    assert {status for status, _ in answers} <= {200, 201}, answers
    assert sum(status == 201 for status, _ in answers) == 1
    assert len({rid for _, rid in answers}) == 1
    found = httpx.get(f"{base}/Organization", params={"identifier": criteria.split("=", 1)[1]}, headers=admin,
                      timeout=30).json()
    assert len(found.get("entry", [])) == 1  # secure mode: a filtered result carries no total


def test_a_next_link_sealed_by_one_worker_opens_on_the_other(workers) -> None:
    _, base, admin = workers
    for n in range(6):
        r = httpx.post(f"{base}/Organization", json={"resourceType": "Organization", "name": f"Org {n}"},
                       headers=admin, timeout=30)
        assert r.status_code == 201, r.text
    seen: set[str] = set()
    page = httpx.get(f"{base}/Organization", params={"_count": "1", "name": "Org"}, headers=admin, timeout=30).json()
    while True:
        seen.update(e["resource"]["id"] for e in page.get("entry", []))
        link = next((x["url"] for x in page.get("link", []) if x["relation"] == "next"), None)
        if link is None:
            break
        with httpx.Client(timeout=30) as fresh:  # a fresh connection: not pinned to the worker that sealed it
            answer = fresh.get(link, headers=admin)
        assert answer.status_code == 200, answer.text
        page = answer.json()
    assert len(seen) == 6


def test_a_worker_that_dies_is_replaced_and_sigterm_stops_them_all(workers) -> None:
    proc, base, _ = workers
    first = _children(proc.pid)
    os.kill(first[0], signal.SIGKILL)
    _until(lambda: len(_children(proc.pid)) == 2 and first[0] not in _children(proc.pid))
    for _ in range(10):
        with httpx.Client(timeout=30) as http:
            assert http.get(f"{base}/metadata").status_code == 200
    now = _children(proc.pid)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
    for child in now:
        assert not Path(f"/proc/{child}").exists() or "zombie" in Path(f"/proc/{child}/status").read_text()


async def test_every_process_on_one_database_seals_cursors_with_its_key() -> None:
    """Nodes that are not workers of one parent (no KZFHIR_CURSOR_SECRET): the first to start draws the
    key into the database, the next reads it, so a cursor one sealed the other opens."""
    from fhir_server.backends import postgres_store
    from fhir_server.search import cursor
    from fhir_server.search.cursor_key import share_cursor_key

    database = fresh_database("cursorkey")
    a, b = postgres_store(database, pool_size=2), postgres_store(database, pool_size=2)
    try:
        await a.open()
        await b.open()
        await share_cursor_key(a, Settings(database=database))
        token = cursor.seal(b"page two")
        cursor.use_key("some other process's own key")
        with pytest.raises(ValueError):
            cursor.unseal(token)
        await share_cursor_key(b, Settings(database=database))  # a second node starting later
        assert cursor.unseal(token) == b"page two"
    finally:
        await b.close()
        await a.close()
        release_database(database)
