"""PostgreSQL out of reach under a live, secured server (issue 11 §3, resilience): every path — read by id
(the compiled read path), search, create, transaction and batch Bundles, an operation — answers 503 with
an OperationOutcome (issue code ``transient``) and ``Retry-After``, never a 500; ``/ready`` says why; and
when the database is back the server serves again by itself, without a restart. Also: a database that
refuses writes (a read-only server where the primary was) answers 503 until it takes them again, and
/ready names a missing or newer schema."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.config import Settings
from fhir_server.security.auth import issue_dev_token
from tests.live_server import free_port, start_server
from tests.pg import PgNode, drain
from tests.security_http.conftest import FHIR_JSON, SEED, _seed, consent


class Live:
    def __init__(self, base: str, node: PgNode, database: str, keys: Path) -> None:
        self.base, self.node, self.database = base, node, database
        self.doctor = {"Authorization": "Bearer " + issue_dev_token("practitioner", "Practitioner/dr1", key_path=keys)}
        self.patient = {"Authorization": "Bearer " + issue_dev_token("patient", "Patient/p1", key_path=keys),
                        **FHIR_JSON}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    node = PgNode()
    folder = tmp_path_factory.mktemp("unavailable")
    keys = folder / "jwks.json"
    database = node.database("down")
    settings = Settings(database=node.url(database), dev_key_path=keys, security_enabled=False)
    asyncio.run(_seed(settings, [*SEED, consent("cons1", {"reference": "Practitioner/dr1"})]))
    port = free_port()
    proc = start_server(node.url(database), port, open_mode=False, dev_keys=keys)  # type: ignore[arg-type]
    log = drain(proc)
    try:
        yield Live(f"http://127.0.0.1:{port}", node, database, keys)
    finally:
        _stop(proc)
        node.remove()
    errors = [line for line in log if " 500 " in line or "Internal Server Error" in line]
    assert not errors, errors


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _transaction(kind: str, status: str) -> dict[str, Any]:
    entry = consent("cons1", {"reference": "Practitioner/dr1"}, status=status)
    return {"resourceType": "Bundle", "type": kind,
            "entry": [{"resource": entry, "request": {"method": "PUT", "url": "Consent/cons1"}}]}


def _every_path(http: httpx.Client, live: Live) -> dict[str, httpx.Response]:
    b = live.base
    return {
        "read": http.get(f"{b}/Observation/o1", headers=live.doctor),
        "search": http.get(f"{b}/Observation", params={"subject": "Patient/p1"}, headers=live.doctor),
        "history": http.get(f"{b}/Observation/o1/_history", headers=live.doctor),
        "update": http.put(f"{b}/Consent/cons1", json=consent("cons1", {"reference": "Practitioner/dr1"}),
                           headers=live.patient),
        "transaction": http.post(f"{b}/", json=_transaction("transaction", "active"), headers=live.patient),
        "batch": http.post(f"{b}/", json=_transaction("batch", "active"), headers=live.patient),
        "operation": http.get(f"{b}/Patient/p1/$everything", headers=live.doctor),
    }


def _is_transient_503(answer: httpx.Response) -> bool:
    if answer.status_code != 503 or not answer.headers.get("retry-after", "").isdigit():
        return False
    body = answer.json()
    return body["resourceType"] == "OperationOutcome" and body["issue"][0]["code"] == "transient"


def _wait_for(http: httpx.Client, url: str, headers: dict[str, str], seconds: float = 30.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        answer = http.get(url, headers=headers)
        assert answer.status_code in (200, 503), answer.text
        if answer.status_code == 200:
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer 200 within {seconds} s")


def test_a_stopped_database_answers_503_on_every_path_and_the_server_reconnects(live: Live) -> None:
    with httpx.Client(timeout=30) as http:
        before = _every_path(http, live)
        assert {k: r.status_code for k, r in before.items()} == {
            "read": 200, "search": 200, "history": 200, "update": 200, "transaction": 200, "batch": 200,
            "operation": 200}, {k: r.text[:300] for k, r in before.items() if r.status_code != 200}

        live.node.stop("fast")  # connections ended by the administrator (57P01), then refused
        try:
            started = time.monotonic()
            down = _every_path(http, live)
            # the database is known to be away after the first failure: 1 s waits, not database_pool_timeout's 30
            assert time.monotonic() - started < 7 * 10, time.monotonic() - started
            wrong = {k: (r.status_code, r.headers.get("retry-after"), r.text[:300]) for k, r in down.items()
                     if not _is_transient_503(r) and not (k == "batch" and r.status_code == 200)}
            assert not wrong, wrong
            # a batch fails as a whole when what comes before its entries fails (with security on: the
            # caller's facts, the audit); else its entries are independent (FHIR http.html#transaction)
            batch = down["batch"]
            if batch.status_code == 200:
                entries = [e["response"] for e in batch.json()["entry"]]
                assert [e["status"] for e in entries] == ["503"], entries
                assert entries[0]["outcome"]["issue"][0]["code"] == "transient", entries
            ready = http.get(f"{live.base}/ready")
            assert ready.status_code == 503 and ready.json()["checks"]["store"]["status"] == "fail"
            # writes queue on one writer thread: twelve at once are all answered within seconds, not 12 × 1 s
            started = time.monotonic()
            granted = consent("cons1", {"reference": "Practitioner/dr1"})
            with ThreadPoolExecutor(12) as pool:
                burst = list(pool.map(lambda _: httpx.put(f"{live.base}/Consent/cons1", headers=live.patient,
                                                          json=granted, timeout=30), range(12)))
            assert all(_is_transient_503(a) for a in burst), [a.status_code for a in burst]
            assert time.monotonic() - started < 12, time.monotonic() - started
            assert http.get(f"{live.base}/health").status_code == 200  # alive: the process is fine
        finally:
            live.node.start()

        took = _wait_for(http, f"{live.base}/Observation/o1", live.doctor)
        assert took < 20, took  # by itself, without a restart of the server
        after = _every_path(http, live)
        assert {k: r.status_code for k, r in after.items()} == {k: 200 for k in after}, \
            {k: r.text[:300] for k, r in after.items() if r.status_code != 200}
        assert http.get(f"{live.base}/ready").status_code == 200


def test_a_database_that_refuses_writes_answers_503_until_it_takes_them_again(live: Live) -> None:
    """As after a failover that left this server connected to a standby: 25006 read-only transactions. A
    secured read is refused too: its audit record cannot be written, and no read goes unaudited."""
    live.node.admin(f"ALTER DATABASE {live.database} SET default_transaction_read_only = on")
    live.node.admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{live.database}'")
    try:
        with httpx.Client(timeout=30) as http:
            update = http.put(f"{live.base}/Consent/cons1", json=consent("cons1", {"reference": "Practitioner/dr1"}),
                              headers=live.patient)
            assert _is_transient_503(update), (update.status_code, update.text[:300])
            read = http.get(f"{live.base}/Observation/o1", headers=live.doctor)
            assert _is_transient_503(read), (read.status_code, read.text[:300])
    finally:
        live.node.admin(f"ALTER DATABASE {live.database} SET default_transaction_read_only = off")
    with httpx.Client(timeout=30) as http:
        deadline = time.monotonic() + 20
        while True:  # the connection that refused was closed; the others are replaced as they refuse
            update = http.put(f"{live.base}/Consent/cons1", json=consent("cons1", {"reference": "Practitioner/dr1"}),
                              headers=live.patient)
            if update.status_code == 200 or time.monotonic() > deadline:
                break
            assert _is_transient_503(update), update.text[:300]
            time.sleep(0.2)
        assert update.status_code == 200, update.text[:300]


def test_ready_says_when_the_schema_is_missing_or_newer_than_this_release(live: Live) -> None:
    from fhir_server.storage.postgres.schema import SCHEMA_VERSION

    with httpx.Client(timeout=30) as http:
        assert http.get(f"{live.base}/ready").json()["checks"]["schema"] == {"status": "pass"}
        live.node.admin(f"UPDATE kzfhir_schema SET version = {SCHEMA_VERSION + 1}", live.database)
        try:
            ready = http.get(f"{live.base}/ready")
            assert ready.status_code == 503, ready.text
            assert "newer than this kzfhir's" in ready.json()["checks"]["schema"]["output"]
        finally:
            live.node.admin(f"UPDATE kzfhir_schema SET version = {SCHEMA_VERSION}", live.database)
        live.node.admin("ALTER TABLE kzfhir_schema RENAME TO kzfhir_schema_away", live.database)
        try:
            ready = http.get(f"{live.base}/ready")
            assert ready.status_code == 503, ready.text
            assert "kzfhir_schema is missing" in ready.json()["checks"]["schema"]["output"]
        finally:
            live.node.admin("ALTER TABLE kzfhir_schema_away RENAME TO kzfhir_schema", live.database)
        assert http.get(f"{live.base}/ready").status_code == 200
