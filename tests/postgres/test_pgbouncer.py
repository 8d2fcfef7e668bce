"""Behind pgbouncer in transaction mode (issue 11 §4: "works behind pgbouncer in transaction mode").

Two live ``kzfhir serve`` processes, security on, reach one database through pgbouncer
(``pool_mode=transaction``, two server connections a database: every client transaction may land on
another server connection) with ``KZFHIR_DATABASE_TRANSACTION_POOLING``. Node A has a direct listen URL
for LISTEN/NOTIFY, node B has none (only the change counter read with each read). The FHIR semantics hold
across them, a Consent revoked on one node refuses the very next read on the other, and the audit chain
verifies. The store-level contract runs behind pgbouncer too (tests/contract, backend ``pgbouncer``)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.backends import postgres_store
from fhir_server.config import Settings
from fhir_server.security.auth import issue_dev_token
from tests.live_server import free_port
from tests.pg import PgBouncer, fresh_database, release_database
from tests.security_http.conftest import BIN, FHIR_JSON, ORG_ACTOR, SEED, _seed, consent

pytestmark = pytest.mark.req("AC-13")
IDENTIFIER = "urn:oid:1.2.398.7.1.9.3"


def _start(database: str, port: int, keys: Path, log: Path, **env: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "fhir_server.cli", "serve", "--port", str(port), "--database", database,
           "--log-level", "info"]
    with log.open("wb") as out:  # the child keeps its own descriptor of it
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=out,
                                env={**os.environ, "KZFHIR_DEV_KEY_PATH": str(keys), **env})
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/metadata", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start: " + log.read_text(errors="replace"))


@pytest.fixture
def pooled_nodes(tmp_path: Path) -> Iterator[tuple[list[str], Path, str, list[Path]]]:
    direct = fresh_database("pgb", published=True)
    pooled = PgBouncer.get().url(direct)
    keys = tmp_path / "jwks.json"
    grant = consent("cons1", {"reference": "Practitioner/dr1"}, classes=("Observation",))
    org = consent("cons-org", ORG_ACTOR, classes=("Observation",), actions=("access", "collect", "correct", "disclose"))
    asyncio.run(_seed(Settings(database=direct, dev_key_path=keys, security_enabled=False), [*SEED, grant, org]))
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    pooling = {"KZFHIR_DATABASE_TRANSACTION_POOLING": "true", "KZFHIR_STATEMENT_TIMEOUT_MS": "30000"}
    try:
        urls = []
        for listen in (direct, ""):  # node A: LISTEN on a direct connection; node B: no listener at all
            port = free_port()
            log = tmp_path / f"node-{len(logs)}.log"
            logs.append(log)
            procs.append(_start(pooled, port, keys, log, KZFHIR_DATABASE_LISTEN_URL=listen, **pooling))
            urls.append(f"http://127.0.0.1:{port}")
        yield urls, keys, direct, logs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
        release_database(direct)


def _observation(n: int, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "pulse"},
            "subject": {"reference": "Patient/p1"}, "identifier": [{"system": IDENTIFIER, "value": f"obs-{n}"}],
            "valueQuantity": {"value": 60 + n % 40, "unit": "/min"}, **extra}


@pytest.mark.req("AC-01")
async def test_two_nodes_behind_pgbouncer_keep_fhir_semantics_consent_and_one_audit_chain(pooled_nodes):
    urls, keys, direct, logs = pooled_nodes
    system = {"Authorization": "Bearer " + issue_dev_token("system", None, bin=BIN, key_path=keys)}
    doctor = {"Authorization": "Bearer " + issue_dev_token("practitioner", "Practitioner/dr1", key_path=keys)}
    patient = {"Authorization": "Bearer " + issue_dev_token("patient", "Patient/p1", key_path=keys)}
    async with httpx.AsyncClient(timeout=60) as http:
        # conditional creates from both nodes at once: one resource
        wanted = f"identifier={IDENTIFIER}|obs-1"
        answers = await asyncio.gather(*(
            http.post(f"{urls[n % 2]}/Observation", json=_observation(1),
                      headers={**system, **FHIR_JSON, "If-None-Exist": wanted}) for n in range(8)))
        assert sorted(a.status_code for a in answers) == [200] * 7 + [201], [a.text for a in answers]
        [oid] = {a.json()["id"] for a in answers}
        # If-Match on version 1 from both nodes: one winner
        body = {**_observation(1), "id": oid, "status": "amended"}
        answers = await asyncio.gather(*(
            http.put(f"{urls[n % 2]}/Observation/{oid}", json=body,
                     headers={**system, **FHIR_JSON, "If-Match": 'W/"1"'}) for n in range(6)))
        assert sorted(a.status_code for a in answers) == [200] + [412] * 5, [a.text for a in answers]
        # many repeated statements from both nodes (what a driver would prepare): every answer a 2xx
        for round_ in range(4):
            reads = await asyncio.gather(*(http.get(f"{url}/Observation/{oid}", headers=doctor)
                                           for url in urls for _ in range(4)))
            assert [r.status_code for r in reads] == [200] * 8, (round_, [r.text for r in reads])
            found = await http.get(f"{urls[round_ % 2]}/Observation", params={"subject": "Patient/p1", "_count": 2},
                                   headers=doctor)
            assert found.status_code == 200 and found.json()["entry"], found.text
        # paging across nodes: the next link sealed on node A is honoured by node B
        page = (await http.get(f"{urls[0]}/Observation", params={"subject": "Patient/p1", "_count": 1},
                               headers=system)).json()
        [next_link] = [link["url"] for link in page["link"] if link["relation"] == "next"] or [None]
        if next_link is not None:
            other = next_link.replace(urls[0], urls[1])
            assert (await http.get(other, headers=system)).status_code == 200
        # the patient revokes on node A: node B (no listener) refuses the very next read
        revoked = consent("cons1", {"reference": "Practitioner/dr1"}, classes=("Observation",), status="inactive")
        answer = await http.put(f"{urls[0]}/Consent/cons1", json=revoked, headers={**patient, **FHIR_JSON})
        assert answer.status_code == 200, answer.text
        assert (await http.get(f"{urls[1]}/Observation/{oid}", headers=doctor)).status_code == 404
        assert (await http.get(f"{urls[0]}/Observation/{oid}", headers=doctor)).status_code == 404
        # given again on node B: node A's next read is open again
        answer = await http.put(f"{urls[1]}/Consent/cons1", headers={**patient, **FHIR_JSON},
                                json=consent("cons1", {"reference": "Practitioner/dr1"}, classes=("Observation",)))
        assert answer.status_code == 200, answer.text
        assert (await http.get(f"{urls[0]}/Observation/{oid}", headers=doctor)).status_code == 200
    # one chain, in one order, across both nodes and the pooler
    store = postgres_store(direct, pool_size=1)
    await store.open()
    try:
        report = await store.audit.verify()
    finally:
        await store.close()
    assert report.ok, report
    # the statement timeout could not be sent through the pooler and the role has none: each node says so
    for log in logs:
        text = log.read_text(errors="replace")
        assert "ALTER ROLE" in text and "statement_timeout" in text, text[-2000:]
