"""Many nodes, one truth (issue 11 §3, Proof): two live ``kzfhir serve`` processes, security on, on one
PostgreSQL database. Requests race from both nodes at once: a conditional create creates one resource,
If-Match has one winner (412 for the others), version numbers never collide, and the audit chain
verifies after all of it. A node SIGKILLed in the middle of an ``$export`` leaves the job to the other
node, which resumes it once the dead node's lease has run out; a node SIGKILLed during ingest loses
nothing it acknowledged (the SQLite counterpart: tests/integration/test_durability.py); reads answered by
both nodes are each in the patient's access log once after one node is SIGKILLed, and the chain verifies."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from fhir_server.backends import postgres_store
from fhir_server.config import Settings
from fhir_server.security.auth import issue_dev_token
from tests.live_server import free_port, start_server
from tests.pg import fresh_database, release_database
from tests.security_http.conftest import BIN, FHIR_JSON, ORG_ACTOR, SEED, _seed, consent

pytestmark = [pytest.mark.req("AC-13"), pytest.mark.skipif(os.name != "posix", reason="needs SIGKILL")]
IDENTIFIER = "urn:oid:1.2.398.7.1.9.3"  # an MIS's own Observation identifiers


class Nodes:
    """Two server processes on one database, and a token of the organisation's MIS (``system``) whose
    patient p1 lets it read, record, correct and export Observations."""

    def __init__(self, database: str, keys: Path, procs: list[subprocess.Popen[bytes]], urls: list[str]) -> None:
        self.database, self.keys, self.procs, self.urls = database, keys, procs, urls
        self.system = {"Authorization": "Bearer " + issue_dev_token("system", None, bin=BIN, key_path=keys)}

    def kill(self, n: int) -> None:
        self.procs[n].send_signal(signal.SIGKILL)  # no shutdown hook runs: only what was committed survives
        self.procs[n].wait(10)


def _observation(n: int, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "pulse"},
            "subject": {"reference": "Patient/p1"}, "identifier": [{"system": IDENTIFIER, "value": f"obs-{n}"}],
            "valueQuantity": {"value": 60 + n % 40, "unit": "/min"}, **extra}


@pytest.fixture
def nodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Nodes]:
    database = fresh_database("multi", published=True)
    keys = tmp_path / "jwks.json"
    # files on storage both nodes share; a short job lease, so that a dead node's export is taken over soon
    monkeypatch.setenv("KZFHIR_EXPORT_DIR", str(tmp_path / "exports"))
    monkeypatch.setenv("KZFHIR_EXPORT_LEASE_SECONDS", "3")
    grant = consent("cons-org", ORG_ACTOR, classes=("Observation",),
                    actions=("access", "collect", "correct", "disclose"))
    asyncio.run(_seed(Settings(database=database, dev_key_path=keys), [*SEED, grant]))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        urls = []
        for _ in range(2):
            port = free_port()
            procs.append(start_server(database, port, open_mode=False, dev_keys=keys))  # type: ignore[arg-type]
            urls.append(f"http://127.0.0.1:{port}")
        yield Nodes(database, keys, procs, urls)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            proc.wait(30)
        release_database(database)


async def _verify_chain(database: str) -> Any:
    store = postgres_store(database, pool_size=1)
    await store.open()
    try:
        return await store.audit.verify()
    finally:
        await store.close()


async def _race(nodes: Nodes, requests: list[tuple[str, str, dict[str, Any], dict[str, str]]]) -> list[httpx.Response]:
    """Send every (method, path, body, headers) at once, alternating between the two nodes."""
    async with httpx.AsyncClient(timeout=60) as http:
        return list(await asyncio.gather(*(
            http.request(method, nodes.urls[n % 2] + path, json=body, headers={**nodes.system, **FHIR_JSON, **headers})
            for n, (method, path, body, headers) in enumerate(requests))))


@pytest.mark.req("AC-14")
async def test_races_from_two_nodes_keep_fhir_semantics_and_one_audit_chain(nodes):
    # conditional creates of one Observation from both nodes: one resource, created once
    wanted = f"identifier={IDENTIFIER}|obs-1"
    answers = await _race(nodes, [("POST", "/Observation", _observation(1), {"If-None-Exist": wanted})] * 8)
    assert sorted(a.status_code for a in answers) == [200] * 7 + [201], [a.text for a in answers]
    ids = {a.json()["id"] for a in answers}
    assert len(ids) == 1
    async with httpx.AsyncClient(timeout=30, headers=nodes.system) as http:
        for url in nodes.urls:  # the same one answer on both nodes
            found = (await http.get(f"{url}/Observation", params={"identifier": f"{IDENTIFIER}|obs-1"})).json()
            assert [e["resource"]["id"] for e in found["entry"] if e["search"]["mode"] == "match"] == list(ids)
    [oid] = ids
    # If-Match on version 1 from both nodes: one winner, 412 for every other
    body = {**_observation(1), "id": oid, "status": "amended"}
    answers = await _race(nodes, [("PUT", f"/Observation/{oid}", body, {"If-Match": 'W/"1"'})] * 8)
    assert sorted(a.status_code for a in answers) == [200] + [412] * 7, [a.text for a in answers]
    assert all(a.json()["resourceType"] == "OperationOutcome" for a in answers if a.status_code == 412)
    # plain updates from both nodes: every one a version of its own, none lost, none twice
    answers = await _race(nodes, [("PUT", f"/Observation/{oid}", {**body, "valueQuantity": {"value": n}}, {})
                                  for n in range(10)])
    assert [a.status_code for a in answers] == [200] * 10, [a.text for a in answers]
    versions = sorted(int(a.json()["meta"]["versionId"]) for a in answers)
    assert versions == list(range(3, 13))
    stamps = sorted(a.json()["meta"]["lastUpdated"] for a in answers)
    assert len(set(stamps)) == 10  # and each at an instant of its own, across nodes
    async with httpx.AsyncClient(timeout=30, headers=nodes.system) as http:
        history = (await http.get(f"{nodes.urls[1]}/Observation/{oid}/_history", params={"_count": 50})).json()
        assert [int(e["resource"]["meta"]["versionId"]) for e in history["entry"]] == list(range(12, 0, -1))
        by_value = {e["resource"]["meta"]["versionId"]: e["resource"]["valueQuantity"]["value"]
                    for e in history["entry"] if int(e["resource"]["meta"]["versionId"]) > 2}
        assert sorted(by_value.values()) == list(range(10))  # every update is a version: none overwrote another
    # one chain, in one order, with every write and read above in it
    report = await _verify_chain(nodes.database)
    assert report.ok, report
    with psycopg.connect(nodes.database) as conn:
        audited = conn.execute("SELECT count(*) FROM audit_chain WHERE data LIKE %s",
                               [f"%Observation/{oid}%".encode()]).fetchone()
    assert audited is not None and audited[0] >= 1 + 1 + 10  # the create, the If-Match winner, the updates


def _job_status(database: str, job_id: str) -> tuple[str, str | None]:
    with psycopg.connect(database) as conn:
        row = conn.execute("SELECT status, lease_holder FROM jobs WHERE id = %s", [job_id]).fetchone()
    assert row is not None
    return str(row[0]), row[1]


def _bundle(first: int, count: int) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": _observation(n), "request": {"method": "POST", "url": "Observation"}}
        for n in range(first, first + count)]}


@pytest.mark.req("AC-12")
async def test_an_export_started_on_a_node_that_is_killed_is_resumed_by_the_other(nodes):
    node_a, node_b = nodes.urls
    async with httpx.AsyncClient(timeout=120, headers=nodes.system) as http:
        for first in (0, 400):  # enough for the export to be running still when its node dies
            answer = await http.post(f"{node_a}/", json=_bundle(first, 400), headers=FHIR_JSON)
            assert answer.status_code == 200, answer.text
        kick = await http.get(f"{node_a}/$export", params={"_type": "Observation"},
                              headers={"Prefer": "respond-async", "Accept": "application/fhir+json"})
        assert kick.status_code == 202, kick.text
        nodes.kill(0)  # node A dies in the middle of the export it runs
        job_id = kick.headers["content-location"].rsplit("/", 1)[1]
        status, holder = _job_status(nodes.database, job_id)
        assert status == "in-progress" and holder is not None  # node A's, mid-way: the kill proves something
        status_url = f"{node_b}/$export-status/{job_id}"
        deadline = time.monotonic() + 120
        while True:  # node B says "in progress" while A's lease runs, then takes the job over and completes it
            answer = await http.get(status_url)
            if answer.status_code == 200:
                break
            assert answer.status_code == 202, answer.text  # never failed because its first node died
            assert time.monotonic() < deadline, "the export was not resumed"
            await asyncio.sleep(0.2)
        manifest = answer.json()
        assert _job_status(nodes.database, job_id) == ("completed", _job_status(nodes.database, job_id)[1])
        assert _job_status(nodes.database, job_id)[1] != holder  # node B ran it
        exported: list[str] = []
        for output in manifest["output"]:
            assert output["type"] == "Observation"
            lines = (await http.get(output["url"].replace(node_a, node_b))).text.splitlines()
            exported += [orjson.loads(line)["id"] for line in lines]
        stored = (await http.get(f"{node_b}/Observation", params={"_summary": "count"})).json()
        assert len(exported) == len(set(exported)) >= 800  # every Observation once, none from A's broken run
        assert "total" not in stored or stored["total"] == len(exported)
    assert (await _verify_chain(nodes.database)).ok


async def _load(url: str, headers: dict[str, str], acknowledged: list[str], stop: asyncio.Event, start: int) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=10, headers=headers) as http:
        n = start
        while not stop.is_set():
            n += 1
            try:
                answer = await http.post("/Observation", json=_observation(n),
                                         headers={**FHIR_JSON, "prefer": "return=minimal"})
            except httpx.HTTPError:
                return  # the node died under us: this write was never acknowledged
            if answer.status_code == 201:
                acknowledged.append(answer.headers["location"].split("/_history")[0].rsplit("/", 1)[1])


@pytest.mark.req("TM-17")
@pytest.mark.slow
async def test_a_node_killed_during_ingest_loses_nothing_it_acknowledged(nodes):
    on_a: list[str] = []
    on_b: list[str] = []
    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    writers = [*(asyncio.create_task(_load(nodes.urls[0], nodes.system, on_a, stop_a, 10_000 * k)) for k in range(4)),
               *(asyncio.create_task(_load(nodes.urls[1], nodes.system, on_b, stop_b, 100_000 + 10_000 * k))
                 for k in range(4))]
    deadline = asyncio.get_running_loop().time() + 120
    while len(on_a) <= 20 and asyncio.get_running_loop().time() < deadline:  # progress, not the clock
        await asyncio.sleep(0.05)
    nodes.kill(0)  # mid-load: its writers' requests in flight die with it
    stop_a.set()
    await asyncio.sleep(1.0)  # node B goes on writing to the same database meanwhile
    stop_b.set()
    await asyncio.gather(*writers)
    assert len(on_a) > 10 and len(on_b) > 10
    async with httpx.AsyncClient(base_url=nodes.urls[1], timeout=30, headers=nodes.system) as http:
        for oid in [*on_a, *on_b]:  # every acknowledged write, by the surviving node
            answer = await http.get(f"/Observation/{oid}")
            assert answer.status_code == 200, oid
        # and the node that died comes back on the same database, seeing them too
        port = free_port()
        nodes.procs.append(start_server(nodes.database, port, open_mode=False, dev_keys=nodes.keys))  # type: ignore[arg-type]
        for oid in on_a[-5:]:
            assert (await http.get(f"http://127.0.0.1:{port}/Observation/{oid}")).status_code == 200
    assert (await _verify_chain(nodes.database)).ok


async def _reads(url: str, headers: dict[str, str], paths: list[str], tag: str, acknowledged: list[str]) -> None:
    """Read ``paths`` on one node, 8 at a time, each with a request id of its own; keep those answered 200."""
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as http:
        async def one(n: int) -> None:
            request_id = f"{tag}-{n}"
            answer = await http.get(paths[n % len(paths)], headers={"X-Request-Id": request_id})
            assert answer.status_code == 200, answer.text
            acknowledged.append(request_id)

        for first in range(0, 48, 8):
            await asyncio.gather(*(one(n) for n in range(first, first + 8)))


@pytest.mark.req("AC-14")
@pytest.mark.req("AC-24")
async def test_reads_on_two_nodes_are_each_in_the_one_chain_after_a_node_is_killed(nodes):
    # reads by id on both nodes at once (the compiled read path: each read's audit record staged by its node's
    # group commit before it is answered, read_audit.py); node A killed at once after its last answer, before
    # its chainer's next round: every read either node answered is in the patient's access log, once, and the
    # chain verifies with both nodes' batches in its one order
    async with httpx.AsyncClient(timeout=30, headers={**nodes.system, **FHIR_JSON}) as http:
        paths = []
        for n in range(3):
            created = await http.post(f"{nodes.urls[0]}/Observation", json=_observation(500 + n))
            assert created.status_code == 201, created.text
            paths.append(f"/Observation/{created.json()['id']}")
    on_a: list[str] = []
    on_b: list[str] = []
    await asyncio.gather(_reads(nodes.urls[0], nodes.system, paths, "a", on_a),
                         _reads(nodes.urls[1], nodes.system, paths, "b", on_b))
    nodes.kill(0)
    assert len(on_a) == len(on_b) == 48
    patient = {"Authorization": "Bearer " + issue_dev_token("patient", "Patient/p1", key_path=nodes.keys)}
    logged: list[str] = []
    async with httpx.AsyncClient(timeout=60, headers=patient) as http:
        url: str | None = f"{nodes.urls[1]}/Patient/p1/$access-log?_count=500"
        while url is not None:
            page = (await http.get(url)).json()
            assert page["resourceType"] == "Bundle", page
            for entry in page.get("entry", []):
                event = entry["resource"]
                ids = [x["what"]["identifier"]["value"] for x in event["entity"]
                       if x["type"].get("code") == "XrequestId"]
                if event["subtype"][0]["code"] == "read" and ids[0].startswith(("a-", "b-")):
                    assert event["id"].startswith("r")  # a record of a read block: the compiled read path's
                    logged += ids
            url = next((link["url"] for link in page.get("link", []) if link["relation"] == "next"), None)
    assert sorted(logged) == sorted(on_a + on_b)  # every acknowledged read, once
    report = await _verify_chain(nodes.database)
    assert report.ok, report
    with psycopg.connect(nodes.database) as conn:
        assert conn.execute("SELECT count(*) FROM read_audit").fetchone() == (0,)  # all chained
