"""``$conformance-run`` / ``$conformance-runs`` (issue 18 from the console, issue 17): an administrator starts the
kit against this server over the API (asynchronous: 202 and a Content-Location), the kit runs in-process as a
client with the writer token given, and the recorded run carries the kit's own verdicts — the same as the kit
run directly against the same server — and its JSON report, never the token. Only administrators may start or
read runs; a token in the URL, an unknown group and a GET kick-off are refused. Security on, national strict."""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance import run
from fhir_server.security.auth import issue_dev_token
from tests.conformance.conftest import BASE, system_token

GROUPS = ["capability", "security"]


def parameters(body: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(p["name"], p) for p in body.get("parameter", [])]


def parts(item: dict[str, Any]) -> dict[str, Any]:
    return {p["name"]: next((v for k, v in p.items() if k.startswith("value")), p.get("part"))
            for p in item["part"]}


async def wait_for(client: httpx.AsyncClient, location: str, headers: dict[str, str]) -> httpx.Response:
    for _ in range(600):
        answer = await client.get(location, headers=headers)
        if answer.status_code != 202:
            return answer
        assert answer.headers["X-Progress"].startswith("running since ")
        await asyncio.sleep(0.1)
    raise AssertionError("the run did not finish")


@pytest.mark.req("TM-14")
@pytest.mark.req("AC-14")
async def test_an_admin_runs_the_kit_through_the_api_and_reads_its_verdicts(secured_server: Any,
                                                                            tmp_path: Path) -> None:
    writer = system_token(tmp_path)
    admin = {"Authorization": f"Bearer {issue_dev_token('admin', 'Practitioner/adm1', key_path=tmp_path / 'k.json')}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=secured_server), base_url=BASE,
                                 timeout=60) as client:
        body = {"resourceType": "Parameters", "parameter": [
            {"name": "writer", "valueString": writer}, *({"name": "only", "valueString": g} for g in GROUPS),
            {"name": "operator", "valueString": "A. Inspector"}]}
        started = await client.post("/$conformance-run", json=body, headers=admin)
        assert started.status_code == 202, started.text
        location = started.headers["Content-Location"]
        assert location.startswith(f"{BASE}/$conformance-runs?run=")
        done = await wait_for(client, location, admin)
        assert done.status_code == 200, done.text
        answer = parameters(done.json())
        summary = dict((name, next((v for k, v in p.items() if k.startswith("value")), None))
                       for name, p in answer if "part" not in p)
        assert summary["status"] == "done" and summary["operator"] == "A. Inspector"
        assert summary["requestedBy"] == "Practitioner/adm1"
        [report_param] = [p for name, p in answer if name == "report"]
        report = json.loads(base64.b64decode(report_param["valueAttachment"]["data"]))
        checks = {parts(p)["id"]: parts(p)["status"] for name, p in answer if name == "check"}
        requirements = {parts(p)["id"]: parts(p)["verdict"] for name, p in answer if name == "requirement"}

        # the same kit, run directly against the same server: the same verdicts (nothing is made up)
        direct = await run(BASE, token=writer, checks=GROUPS, transport=httpx.ASGITransport(app=secured_server))
        assert checks == {r.id: r.status.value for r in direct.results} and "CAP-01" in checks
        assert requirements == {v.id: v.verdict.value for v in direct.requirements}
        assert summary["verdict"] == direct.verdict and summary["exitCode"] == direct.exit_code
        assert report["runBy"]["operator"] == "A. Inspector" and report["fullRun"] is False
        assert writer not in done.text

        listed = await client.get("/$conformance-runs", headers=admin)
        [one] = [parts(p) for name, p in parameters(listed.json()) if name == "run"]
        assert one["status"] == "done" and one["verdict"] == direct.verdict and one["only"] == "security"
        assert writer not in listed.text

        # refusals
        for caller in (issue_dev_token("practitioner", "Practitioner/dr1", key_path=tmp_path / "k.json"),
                       issue_dev_token("auditor", "Practitioner/a1", key_path=tmp_path / "k.json")):
            auth = {"Authorization": f"Bearer {caller}"}
            assert (await client.post("/$conformance-run", json=body, headers=auth)).status_code == 403
            assert (await client.get("/$conformance-runs", headers=auth)).status_code == 403
        in_url = await client.post("/$conformance-run", params={"writer": "x"}, json=body, headers=admin)
        assert in_url.status_code == 400 and in_url.json()["issue"][0]["expression"] == ["writer"]
        bogus = {"resourceType": "Parameters", "parameter": [{"name": "writer", "valueString": writer},
                                                             {"name": "only", "valueString": "nonsense"}]}
        assert (await client.post("/$conformance-run", json=bogus, headers=admin)).status_code == 400
        no_writer = {"resourceType": "Parameters", "parameter": []}
        assert (await client.post("/$conformance-run", json=no_writer, headers=admin)).status_code == 400
        assert (await client.get("/$conformance-run", headers=admin)).status_code == 405
        assert (await client.get("/$conformance-runs", params={"run": "nope"}, headers=admin)).status_code == 404

    # the token never reaches the database (the job, the audit trail)
    conn = sqlite3.connect(str(tmp_path / "db.sqlite"))
    try:
        rows = [*conn.execute("SELECT data FROM jobs"), *conn.execute("SELECT data FROM audit_chain")]
        kinds = sorted(kind for (kind,) in conn.execute("SELECT kind FROM jobs"))
    finally:
        conn.close()
    assert rows and not any(writer.encode() in bytes(r[0]) for r in rows)
    assert kinds == ["conformance-report", "conformance-run"]  # the run, and its results beside it
