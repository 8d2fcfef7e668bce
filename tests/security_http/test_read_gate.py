"""The compiled secured read by id (security/read_gate.py): same verdicts and audit trail as the
general path, from cached callers and decisions and the read-audit journal (issue 5)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from fhir_server.security.audit.read_blocks import parse_block
from fhir_server.security.auth import issue_dev_token
from fhir_server.storage.audit import ReadStaging
from fhir_server.storage.sqlite.audit.chain import block_data
from fhir_server.storage.sqlite.audit.journal import unchained_lines
from tests.live_server import free_port, start_server
from tests.security_http.conftest import FHIR_JSON, SEED, consent

AUDITOR = ("auditor", "Practitioner/dr9")


async def _events(server: httpx.AsyncClient, token: Any, patient: str = "Patient/p1") -> list[dict[str, Any]]:
    bundle = (await server.get("/AuditEvent", params={"patient": patient, "_count": "1000"},
                               headers=token(*AUDITOR))).json()
    return [e["resource"] for e in bundle.get("entry", [])]


def _reads_of(events: list[dict[str, Any]], reference: str) -> list[dict[str, Any]]:
    return [e for e in events if e["subtype"][0]["code"] == "read"
            and any((x.get("what") or {}).get("reference") == reference for x in e["entity"])]


def _without_per_read_values(event: dict[str, Any]) -> dict[str, Any]:
    copy = {k: v for k, v in event.items() if k not in ("id", "recorded")}
    copy["entity"] = [{**x, "what": {"identifier": {}}} if x["type"].get("code") == "XrequestId" else x
                      for x in event["entity"]]
    return copy


@pytest.mark.req("AC-14")
async def test_a_compiled_read_is_audited_exactly_as_the_general_path_audits_it(server, token):
    doctor = token("practitioner", "Practitioner/dr1")
    fast = await server.get("/Observation/o1", headers=doctor)
    # a conditional read takes the general path (read.handle): same caller, same resource
    general = await server.get("/Observation/o1", headers={**doctor, "If-None-Match": 'W/"99"'})
    assert fast.status_code == general.status_code == 200 and fast.content == general.content
    reads = _reads_of(await _events(server, token), "Observation/o1/_history/1")
    assert len(reads) == 2
    compiled = [e for e in reads if e["id"].startswith("r")]
    plain = [e for e in reads if not e["id"].startswith("r")]
    assert len(compiled) == len(plain) == 1  # the first from a read block, the second a chained event
    assert _without_per_read_values(compiled[0]) == _without_per_read_values(plain[0])
    # the block's event is an AuditEvent of its own, readable by id
    by_id = await server.get(f"/AuditEvent/{compiled[0]['id']}", headers=token(*AUDITOR))
    assert by_id.status_code == 200 and by_id.json() == compiled[0]


@pytest.mark.req("AC-14")
async def test_every_read_gets_its_own_event_with_its_request_id(server, token):
    doctor = token("practitioner", "Practitioner/dr1")
    for n in range(5):
        assert (await server.get("/Observation/o1", headers={**doctor, "X-Request-Id": f"req-{n}"})).status_code == 200
    reads = _reads_of(await _events(server, token), "Observation/o1/_history/1")
    ids = {x["what"]["identifier"]["value"] for e in reads for x in e["entity"] if x["type"]["code"] == "XrequestId"}
    assert ids == {f"req-{n}" for n in range(5)} and len({e["id"] for e in reads}) == 5


@pytest.mark.req("AC-14")
async def test_a_store_without_a_journal_commits_each_read_before_answering(server, token, monkeypatch):
    store = server.app.state.services.store
    monkeypatch.setattr(store.audit, "journal_reads", lambda lines: False)  # as a backend that keeps no journal
    doctor = token("practitioner", "Practitioner/dr1")
    for _ in range(2):
        assert (await server.get("/Observation/o1", headers=doctor)).status_code == 200
    reads = _reads_of(await _events(server, token), "Observation/o1/_history/1")
    assert len(reads) == 2 and all(e["id"].startswith("r") for e in reads)
    assert {x["what"]["reference"] for e in reads for x in e["entity"] if x.get("role", {}).get("code") == "1"} == {
        "Patient/p1"}
    notes = (await server.get("/Patient/p1/$notifications", headers=token("patient", "Patient/p1"))).json()
    texts = [e["resource"]["payload"][0]["contentString"] for e in notes["entry"]]
    # each read told to the patient: a notice per read (a unit each), or one naming both (staged reads,
    # PostgreSQL, chained as one block)
    assert sum(t.count("Practitioner/dr1 read Observation/o1/_history/1") for t in texts) == 2


@pytest.mark.req("AC-14")
async def test_reads_after_fact_bearing_writes_reuse_one_audit_template(server, token, monkeypatch):
    # issue 12: each fact-bearing write voids every cached decision; a new ~2.5 KB template per read after
    # it was most of what an audited read cost on a store that keeps changing
    store = server.app.state.services.store
    lines: list[bytes] = []
    if isinstance(store.audit, ReadStaging):  # PostgreSQL: the lines are staged in the database
        staged = store.audit.stage_reads

        async def stage(data: bytes) -> None:
            lines.append(data)
            await staged(data)

        monkeypatch.setattr(store.audit, "stage_reads", stage)
    else:
        monkeypatch.setattr(store.audit, "journal_reads", lambda data: lines.append(data) or True)
    doctor, patient = token("practitioner", "Practitioner/dr1"), token("patient", "Patient/p1")
    same = consent("cons1", {"reference": "Practitioner/dr1"}, classes=("Observation",))
    for _ in range(3):
        assert (await server.get("/Observation/o1", headers=doctor)).status_code == 200
        assert (await server.put("/Consent/cons1", json=same, headers={**patient, **FHIR_JSON})).status_code == 200
    journaled = [line for chunk in lines for line in chunk.splitlines()]
    assert sum(line.startswith(b'["R",') for line in journaled) == 3
    assert sum(line.startswith(b'["T",') for line in journaled) == 1


@pytest.mark.req("AC-01")
@pytest.mark.req("AC-03")
async def test_a_revoked_consent_stops_the_very_next_read(server, token):
    doctor = token("practitioner", "Practitioner/dr1")
    for _ in range(3):  # the decision is cached now
        assert (await server.get("/Observation/o1", headers=doctor)).status_code == 200
    revoked = consent("cons1", {"reference": "Practitioner/dr1"}, classes=("Observation",), status="inactive")
    patient = token("patient", "Patient/p1")  # a patient may always revoke their consent
    assert (await server.put("/Consent/cons1", json=revoked, headers={**patient, **FHIR_JSON})).status_code == 200
    assert (await server.get("/Observation/o1", headers=doctor)).status_code == 404  # hidden means absent


@pytest.mark.req("AC-03")
async def test_a_consent_that_ends_stops_reads_without_any_write(secure_settings, seed, token):
    from fhir_server.api.app import create_app
    from tests.conftest import BASE

    # the seeding, the server's start and the first two reads must fall before the end: 6 s leaves room for a
    # loaded machine and PostgreSQL (make test runs this file on both backends at once)
    end = (datetime.now(UTC) + timedelta(seconds=6)).replace(microsecond=0)
    limited = consent("cons-short", {"reference": "Practitioner/dr2"}, classes=("Observation",))
    limited["provision"]["provision"][0]["period"] = {"end": end.isoformat().replace("+00:00", "Z")}
    await seed([limited])
    app = create_app(secure_settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        doctor = token("practitioner", "Practitioner/dr2")
        assert (await client.get("/Observation/o1", headers=doctor)).status_code == 200
        assert (await client.get("/Observation/o1", headers=doctor)).status_code == 200  # cached
        await asyncio.sleep(max(0.0, (end - datetime.now(UTC)).total_seconds()) + 1.2)
        assert (await client.get("/Observation/o1", headers=doctor)).status_code == 404


@pytest.mark.req("AC-12")
async def test_an_expired_token_is_refused_after_cached_reads(server, secure_settings):
    # expired 28 s ago: still inside the verifier's 30 s clock-skew leeway for 2 more seconds
    now = int(time.time())
    short = issue_dev_token("practitioner", "Practitioner/dr1", key_path=secure_settings.dev_key_path, ttl_seconds=72,
                            now=now - 100)
    headers = {"Authorization": f"Bearer {short}"}
    for _ in range(3):
        assert (await server.get("/Observation/o1", headers=headers)).status_code == 200
    await asyncio.sleep(now + 2.3 - time.time())
    refused = await server.get("/Observation/o1", headers=headers)
    assert refused.status_code == 401 and refused.json()["resourceType"] == "OperationOutcome"


@pytest.mark.req("AC-02")
async def test_break_glass_reads_take_the_general_path_and_notify_at_once(server, token):
    emergency = token("practitioner", "Practitioner/dr2", break_glass="unconscious")
    assert (await server.get("/Observation/o1", headers=emergency)).status_code == 200
    urgent = await server.app.state.services.store.outbox_partition("notification-urgent", "Patient/p1", 10)
    assert len(urgent) == 1


# -- a real server process, killed ---------------------------------------------------------------

@pytest.mark.req("AC-14")
@pytest.mark.req("TM-13")
@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="needs SIGKILL")
def test_every_answered_read_is_in_the_audit_trail_after_a_kill(tmp_path):
    db, keys, port = tmp_path / "reads.sqlite", tmp_path / "jwks.json", free_port()
    proc = start_server(db, port, dev_keys=keys)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            for res in [*SEED, consent("cons1", {"reference": "Practitioner/dr1"}, classes=("Observation",))]:
                assert c.put(f"/{res['resourceType']}/{res['id']}", json=res, headers=FHIR_JSON).status_code in (
                    200, 201)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    proc = start_server(db, port, open_mode=False, dev_keys=keys)
    doctor = {"Authorization": "Bearer " + issue_dev_token("practitioner", "Practitioner/dr1", key_path=keys)}
    answered = 0
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            for _ in range(300):
                assert c.get("/Observation/o1", headers=doctor).status_code == 200
                answered += 1
        proc.send_signal(signal.SIGKILL)  # no shutdown hook: the journal is all that holds the last reads
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # before a server opens the database again: some reads are chained, the rest wait in the journal
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    chained = sum(len(parse_block(block_data(data))["records"])
                  for seq, data in conn.execute("SELECT seq, data FROM audit_chain WHERE event_id = 'r' || seq"))
    conn.close()
    assert chained + unchained_lines(str(db)) in (answered, answered + 1)  # + the template line if unchained
    proc = start_server(db, port, open_mode=False, dev_keys=keys)  # opening chains what the killed process journaled
    try:
        auditor = {"Authorization": "Bearer " + issue_dev_token(*AUDITOR, key_path=keys)}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            assert c.get("/Observation/o1", headers=doctor).status_code == 200  # one read by the new process
            bundle = c.get("/AuditEvent", params={"patient": "Patient/p1", "_count": "1000"}, headers=auditor).json()
            reads = _reads_of([e["resource"] for e in bundle["entry"]], "Observation/o1/_history/1")
            assert len(reads) == answered + 1 == 301
            # the dead process's reads were chained before anything of the new one: newest first is latest first
            recorded = [e["recorded"] for e in reads]
            assert recorded == sorted(recorded, reverse=True)
            # the patient is told of each of them (AC-18)
            patient = {"Authorization": "Bearer " + issue_dev_token("patient", "Patient/p1", key_path=keys)}
            notes = c.get("/Patient/p1/$notifications", params={"_count": "500"}, headers=patient).json()
            texts = "\n".join(p["contentString"] for e in notes["entry"] for p in e["resource"]["payload"][:1])
            assert texts.count("Observation/o1/_history/1") == 301
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    from fhir_server.cli import main

    assert main(["audit", "verify", "--database", str(db)]) == 0
