"""Failover by promotion under a live, secured server (issue 11 §3): the server is given both hosts in one
libpq URL with ``target_session_attrs=read-write``; the primary dies (``pg_ctl stop -m immediate``, as a
crash), requests in between are answered 503, never 500; the standby is promoted (``pg_ctl promote``, as
Patroni does) and the server finds the new primary by itself: writes succeed, what was acknowledged and
replicated before is there, and the audit chain verifies across the failover."""

from __future__ import annotations

import asyncio
import subprocess
import time

import httpx
import pytest

from fhir_server.backends import postgres_store
from fhir_server.config import Settings
from fhir_server.security.auth import issue_dev_token
from tests.live_server import free_port, start_server
from tests.pg import PgNode, drain, wait_replayed
from tests.security_http.conftest import FHIR_JSON, SEED, _seed, consent

pytestmark = pytest.mark.req("TM-13")


async def _chain_verifies(url: str) -> bool:
    store = postgres_store(url, pool_size=1)
    await store.open()
    try:
        report = await store.audit.verify()
    finally:
        await store.close()
    return bool(report.ok)


def test_the_server_follows_a_promoted_standby(tmp_path) -> None:
    primary = PgNode()
    standby: PgNode | None = None
    proc: subprocess.Popen[bytes] | None = None
    try:
        database = primary.database("fail")
        keys = tmp_path / "jwks.json"
        asyncio.run(_seed(Settings(database=primary.url(database), dev_key_path=keys, security_enabled=False),
                          [*SEED, consent("cons1", {"reference": "Practitioner/dr1"})]))
        standby = primary.standby()
        both = (f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/{database}"
                "?target_session_attrs=read-write")
        port = free_port()
        proc = start_server(both, port, open_mode=False, dev_keys=keys)  # type: ignore[arg-type]
        log = drain(proc)
        base = f"http://127.0.0.1:{port}"
        doctor = {"Authorization": "Bearer " + issue_dev_token("practitioner", "Practitioner/dr1", key_path=keys)}
        patient = {"Authorization": "Bearer " + issue_dev_token("patient", "Patient/p1", key_path=keys), **FHIR_JSON}
        with httpx.Client(timeout=30) as http:
            granted = consent("cons1", {"reference": "Practitioner/dr1"})
            granted["dateTime"] = "2026-01-05T09:00:00+05:00"
            assert http.put(f"{base}/Consent/cons1", json=granted, headers=patient).status_code == 200
            before = http.get(f"{base}/Consent/cons1", headers=patient).json()["meta"]["versionId"]
            wait_replayed(primary, standby, database)  # asynchronous replication: acknowledged and replayed

            primary.stop("immediate")
            between = [http.get(f"{base}/Observation/o1", headers=doctor),
                       http.put(f"{base}/Consent/cons1", json=granted, headers=patient)]
            assert [a.status_code for a in between] == [503, 503], [a.text[:300] for a in between]
            assert all(a.json()["issue"][0]["code"] == "transient" and a.headers["retry-after"] for a in between)
            assert http.get(f"{base}/ready").status_code == 503

            standby.promote()
            started = time.monotonic()
            while True:  # the pools find the writable host of the URL by themselves
                answer = http.get(f"{base}/Observation/o1", headers=doctor)
                assert answer.status_code in (200, 503), answer.text[:300]
                if answer.status_code == 200:
                    break
                assert time.monotonic() - started < 30, "the server did not reconnect to the promoted standby"
                time.sleep(0.2)
            assert http.get(f"{base}/Consent/cons1", headers=patient).json()["meta"]["versionId"] == before
            fresh = consent("after", {"reference": "Practitioner/dr2"})
            del fresh["id"]
            created = http.post(f"{base}/Consent", json=fresh, headers=patient)
            assert created.status_code == 201, created.text[:300]
            assert http.get(f"{base}/Consent/{created.json()['id']}", headers=patient).status_code == 200
            assert http.get(f"{base}/ready").status_code == 200
        assert not [line for line in log if " 500 " in line]
        proc.terminate()
        proc.wait(30)
        proc = None
        assert asyncio.run(_chain_verifies(standby.url(database)))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
        if standby is not None:
            standby.remove()
        primary.remove()
