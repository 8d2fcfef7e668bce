"""Reads from a hot standby (issue 11 §3, read replicas): a real primary and a streaming standby started
by the tests (tests/pg.py: ``pg_basebackup -R``), a live secured server given the standby as its replica.
Reads by id, search and history are served by the standby; the client that wrote reads its write
(cookie, or its token) even while the standby lags; access decisions use the primary's facts; a standby
that is down costs no request; /metrics tells who served and how far behind the standby is."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fhir_server.config import Settings
from fhir_server.security.auth import issue_dev_token
from tests.live_server import free_port, start_server
from tests.pg import PgNode, drain, wait_replayed
from tests.security_http.conftest import FHIR_JSON, SEED, _seed, consent


class Pair:
    def __init__(self, base: str, primary: PgNode, standby: PgNode, database: str, keys: Path) -> None:
        self.base, self.primary, self.standby, self.database, self.keys = base, primary, standby, database, keys
        self.replica = f"127.0.0.1:{standby.port}/{database}"

    def token(self, role: str, who: str) -> dict[str, str]:
        return {"Authorization": "Bearer " + issue_dev_token(role, who, key_path=self.keys)}

    def served(self, http: httpx.Client) -> dict[str, float]:
        text = http.get(f"{self.base}/metrics").text
        return {m[0]: float(m[1]) for m in re.findall(r'kzfhir_store_reads_total\{served_by="([^"]+)"\} (\S+)', text)}

    def metric(self, http: httpx.Client, name: str) -> float:
        text = http.get(f"{self.base}/metrics").text
        found = re.search(rf'{name}\{{replica="{re.escape(self.replica)}"\}} (\S+)', text)
        assert found, text[-2000:]
        return float(found.group(1))

    def replayed(self) -> None:
        wait_replayed(self.primary, self.standby, self.database)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    primary = PgNode()
    standby: PgNode | None = None
    proc: subprocess.Popen[bytes] | None = None
    try:
        database = primary.database("rep")
        keys = tmp_path_factory.mktemp("replicas") / "jwks.json"
        settings = Settings(database=primary.url(database), dev_key_path=keys, security_enabled=False)
        asyncio.run(_seed(settings, [*SEED, consent("cons1", {"reference": "Practitioner/dr1"})]))
        standby = primary.standby()
        port = free_port()
        with pytest.MonkeyPatch.context() as env:
            env.setenv("KZFHIR_DATABASE_REPLICAS", standby.url(database))
            proc = start_server(primary.url(database), port, open_mode=False, dev_keys=keys)  # type: ignore[arg-type]
        log = drain(proc)
        yield Pair(f"http://127.0.0.1:{port}", primary, standby, database, keys)
        errors = [line for line in log if " 500 " in line]
        assert not errors, errors
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
        if standby is not None:
            standby.remove()
        primary.remove()


def _version(answer: httpx.Response) -> str:
    assert answer.status_code == 200, answer.text[:300]
    return answer.json()["meta"]["versionId"]


def _wait_in_use(pair: Pair, http: httpx.Client) -> None:
    deadline = time.monotonic() + 20
    while pair.metric(http, "kzfhir_replica_up") != 1 or pair.metric(http, "kzfhir_replica_lag_seconds") > 5:
        assert time.monotonic() < deadline, "the standby was not taken into use"
        time.sleep(0.2)


def test_reads_by_id_vread_search_history_and_head_are_served_by_the_standby(pair: Pair) -> None:
    pair.replayed()
    doctor = pair.token("practitioner", "Practitioner/dr1")
    with httpx.Client(timeout=30) as http:
        _wait_in_use(pair, http)
        before = pair.served(http)
        assert http.get(f"{pair.base}/Observation/o1", headers=doctor).status_code == 200
        found = http.get(f"{pair.base}/Observation", params={"subject": "Patient/p1"}, headers=doctor)
        assert found.status_code == 200 and found.json()["entry"][0]["resource"]["id"] == "o1"
        assert http.get(f"{pair.base}/Observation/o1/_history", headers=doctor).status_code == 200
        assert http.get(f"{pair.base}/Observation/o1/_history/1", headers=doctor).status_code == 200
        assert http.head(f"{pair.base}/Observation/o1", headers=doctor).status_code == 200
        after = pair.served(http)
        assert after[pair.replica] - before.get(pair.replica, 0) >= 5, (before, after)
        ready = http.get(f"{pair.base}/ready").json()
        assert ready["checks"]["replicas"]["status"] == "pass", ready


def test_the_writing_client_reads_its_write_while_the_standby_lags(pair: Pair) -> None:
    patient = {**pair.token("patient", "Patient/p1"), **FHIR_JSON}
    other = pair.token("patient", "Patient/p1")  # the same person, another token and no cookie: another client
    pair.replayed()
    with httpx.Client(timeout=30) as writer, httpx.Client(timeout=30) as bystander:
        _wait_in_use(pair, writer)
        old = _version(bystander.get(f"{pair.base}/Consent/cons1", headers=other))
        pair.standby.admin("SELECT pg_wal_replay_pause()")
        try:
            updated = consent("cons1", {"reference": "Practitioner/dr1"})
            updated["dateTime"] = "2026-01-02T10:00:00+05:00"
            answer = writer.put(f"{pair.base}/Consent/cons1", json=updated, headers=patient)
            assert answer.status_code == 200, answer.text[:300]
            new = answer.json()["meta"]["versionId"]
            assert new != old and "kzfhir_rw" in answer.headers.get("set-cookie", "")
            # the writer: by its cookie, and by its token without the cookie (a fresh client)
            assert _version(writer.get(f"{pair.base}/Consent/cons1", headers=patient)) == new
            with httpx.Client(timeout=30) as fresh:
                assert _version(fresh.get(f"{pair.base}/Consent/cons1", headers=patient)) == new
            # the standby has not replayed it: a client that did not write is served the standby's version
            assert _version(bystander.get(f"{pair.base}/Consent/cons1", headers=other)) == old
            assert pair.metric(writer, "kzfhir_replica_lag_seconds") >= 0
        finally:
            pair.standby.admin("SELECT pg_wal_replay_resume()")
        pair.replayed()
        assert _version(bystander.get(f"{pair.base}/Consent/cons1", headers=other)) == new


@pytest.mark.req("AC-03")
def test_access_is_decided_by_the_primary_whatever_the_standby_has_replayed(pair: Pair) -> None:
    patient = {**pair.token("patient", "Patient/p1"), **FHIR_JSON}
    doctor = pair.token("practitioner", "Practitioner/dr1")
    pair.replayed()
    with httpx.Client(timeout=30) as http:
        _wait_in_use(pair, http)
        assert http.get(f"{pair.base}/Observation/o1", headers=doctor).status_code == 200
        pair.standby.admin("SELECT pg_wal_replay_pause()")
        try:
            revoked = consent("cons1", {"reference": "Practitioner/dr1"}, status="inactive")
            assert http.put(f"{pair.base}/Consent/cons1", json=revoked, headers=patient).status_code == 200
            # the standby still holds the active Consent; the doctor is refused at once (hidden means absent)
            with httpx.Client(timeout=30) as doctors_client:
                assert doctors_client.get(f"{pair.base}/Observation/o1", headers=doctor).status_code == 404
                found = doctors_client.get(f"{pair.base}/Observation", params={"subject": "Patient/p1"},
                                           headers=doctor).json()
                assert not found.get("entry")
        finally:
            pair.standby.admin("SELECT pg_wal_replay_resume()")
        granted = consent("cons1", {"reference": "Practitioner/dr1"})
        assert http.put(f"{pair.base}/Consent/cons1", json=granted, headers=patient).status_code == 200
        assert http.get(f"{pair.base}/Observation/o1", headers=doctor).status_code == 200


def test_a_standby_that_is_down_costs_no_request(pair: Pair) -> None:
    doctor = pair.token("practitioner", "Practitioner/dr1")
    with httpx.Client(timeout=30) as http:
        _wait_in_use(pair, http)
        pair.standby.stop("immediate")
        try:
            for _ in range(5):  # the first may find the standby's connection broken: served by the primary
                assert http.get(f"{pair.base}/Observation/o1", headers=doctor).status_code == 200
                assert http.get(f"{pair.base}/Observation", params={"subject": "Patient/p1"},
                                headers=doctor).status_code == 200
            deadline = time.monotonic() + 10
            while pair.metric(http, "kzfhir_replica_up") != 0:
                assert time.monotonic() < deadline
                time.sleep(0.2)
            ready = http.get(f"{pair.base}/ready")
            assert ready.status_code == 200 and ready.json()["checks"]["replicas"]["status"] == "warn"
        finally:
            pair.standby.start()
        _wait_in_use(pair, http)
        before = pair.served(http)[pair.replica]
        assert http.get(f"{pair.base}/Observation/o1", headers=doctor).status_code == 200
        assert pair.served(http)[pair.replica] > before
