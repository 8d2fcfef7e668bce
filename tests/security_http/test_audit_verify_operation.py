"""``AuditEvent/$audit-verify`` over real HTTP on SQLite and PostgreSQL (AC-14, TM-13): an intact chain is
verified, a row changed behind the server's back (its guard dropped, as someone with the database owner's rights
would) shows as broken at that row, anchors catch a rewritten tail, only admins and auditors may run it, and
every run and every refusal is audited. The CLI and the operation give the same verdict on the same SQLite
file (one rule)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.api.app import create_app
from fhir_server.cli import main
from fhir_server.config import Settings
from fhir_server.security.auth import issue_dev_token
from tests.conftest import BASE
from tests.pg import fresh_database, release_database


@dataclass
class Server:
    client: httpx.AsyncClient
    settings: Settings
    backend: str

    def auth(self, role: str, user: str | None = None) -> dict[str, str]:
        bin_ = "940140000385" if role == "system" else None
        token = issue_dev_token(role, user, bin=bin_, key_path=self.settings.dev_key_path)
        return {"Authorization": f"Bearer {token}"}

    async def verify(self, role: str = "admin", user: str = "Practitioner/adm1", **params: Any) -> httpx.Response:
        return await self.client.get("/AuditEvent/$audit-verify", params=params, headers=self.auth(role, user))

    def tamper(self) -> int:
        """Change one stored AuditEvent's bytes, bypassing the store: the seq changed."""
        if self.backend == "sqlite":
            conn = sqlite3.connect(str(self.settings.database))
            try:
                conn.execute("DROP TRIGGER audit_chain_no_update")
                seq, data = conn.execute("SELECT seq, data FROM audit_chain WHERE event_id NOT LIKE 'r%' AND "
                                         "event_id NOT LIKE 't%' ORDER BY seq LIMIT 1 OFFSET 1").fetchone()
                conn.execute("UPDATE audit_chain SET data = ? WHERE seq = ?",
                             (bytes(data).replace(b'"recorded":"', b'"recorded":"1', 1), seq))
                conn.commit()
            finally:
                conn.close()
            return int(seq)
        import psycopg

        with psycopg.connect(str(self.settings.database), autocommit=True) as conn:
            conn.execute("ALTER TABLE audit_chain DISABLE TRIGGER USER")
            row = conn.execute("SELECT seq, data FROM audit_chain WHERE event_id NOT LIKE 'r%%' AND "
                               "event_id NOT LIKE 't%%' ORDER BY seq LIMIT 1 OFFSET 1").fetchone()
            assert row is not None
            conn.execute("UPDATE audit_chain SET data = %s WHERE seq = %s",
                         [bytes(row[1]).replace(b'"recorded":"', b'"recorded":"1', 1), row[0]])
            return int(row[0])


@pytest.fixture(params=["sqlite", "postgres"])
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Server]:
    database: Path | str = tmp_path / "verify.sqlite" if request.param == "sqlite" else fresh_database(published=True)
    settings = Settings(database=database, synchronous_full=False, dev_key_path=tmp_path / "dev-jwks.json")
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=BASE, timeout=60) as client:
            yield Server(client, settings, request.param)
    finally:
        release_database(database)


def values(answer: dict[str, Any]) -> dict[str, Any]:
    assert answer["resourceType"] == "Parameters"
    return {p["name"]: next(v for k, v in p.items() if k.startswith("value")) for p in answer["parameter"]}


async def some_traffic(server: Server) -> None:
    writer = {**server.auth("system"), "content-type": "application/fhir+json"}
    for i in range(3):
        created = await server.client.post("/Organization", json={"resourceType": "Organization", "name": f"O{i}"},
                                           headers=writer)
        assert created.status_code == 201, created.text
    await server.client.get("/Observation/nope", headers=server.auth("practitioner", "Practitioner/dr1"))


@pytest.mark.req("AC-14")
@pytest.mark.req("TM-13")
async def test_the_operation_verifies_the_chain_and_a_changed_row_shows_as_broken(server: Server) -> None:
    await some_traffic(server)
    never = await server.verify(last="true")
    assert never.status_code == 200 and never.json() == {"resourceType": "Parameters"}
    first = await server.verify()
    assert first.status_code == 200, first.text
    intact = values(first.json())
    assert intact["verified"] is True and intact["eventsChecked"] >= 4 and "firstBrokenSeq" not in intact
    assert len(intact["headHash"]) == 64 and intact["ranAt"].endswith("Z")
    # POST with Parameters, as an auditor, with the head recorded earlier as an anchor
    anchor = f"{intact['headSeq']}:{intact['headHash']}"
    posted = await server.client.post("/AuditEvent/$audit-verify", json={"resourceType": "Parameters", "parameter": [
        {"name": "anchor", "valueString": anchor}]}, headers={**server.auth("auditor", "Practitioner/aud1"),
                                                             "content-type": "application/fhir+json"})
    assert posted.status_code == 200, posted.text
    assert values(posted.json())["verified"] is True
    # an anchor that differs: the tail was rewritten
    wrong = values((await server.verify(anchor=f"{intact['headSeq']}:{'0' * 64}")).json())
    assert wrong["verified"] is False and wrong["firstBrokenSeq"] == intact["headSeq"]
    assert "anchor" in wrong["problem"]

    seq = server.tamper()
    broken = values((await server.verify()).json())
    assert broken["verified"] is False and broken["firstBrokenSeq"] == seq
    assert broken["headSeq"] == seq - 1 and broken["eventsChecked"] == seq - 1
    assert "changed" in broken["problem"]
    kept = values((await server.verify("auditor", "Practitioner/aud1", last="true")).json())  # not run again
    assert kept == {**broken, "ranBy": "Practitioner/adm1"}
    assert (await server.verify(last="true", anchor=anchor)).status_code == 400


@pytest.mark.req("AC-14")
async def test_only_admins_and_auditors_may_verify_and_every_run_is_audited(server: Server) -> None:
    for role, user in (("practitioner", "Practitioner/dr1"), ("patient", "Patient/p1"), ("system", None)):
        refused = await server.verify(role, user or "")
        assert refused.status_code == 403, (role, refused.text)
    bad = await server.verify(anchor="12:nothex")
    assert bad.status_code == 400 and bad.json()["issue"][0]["expression"] == ["anchor"]
    unknown = await server.verify(full="yes")
    assert unknown.status_code == 400
    assert (await server.verify("auditor", "Practitioner/aud1")).status_code == 200
    events = (await server.client.get("/AuditEvent", params={"_count": "100"},
                                      headers=server.auth("auditor", "Practitioner/aud1"))).json()
    runs = [e["resource"] for e in events.get("entry", []) if "$audit-verify" in str(e["resource"].get("entity"))]
    outcomes = sorted((e["outcome"], next(a["who"].get("reference", "") for a in e["agent"] if a.get("requestor")))
                      for e in runs)
    assert ("0", "Practitioner/aud1") in outcomes
    assert ("4", "Practitioner/dr1") in outcomes and ("4", "Patient/p1") in outcomes


@pytest.mark.req("AC-14")
@pytest.mark.parametrize("server", ["sqlite"], indirect=True)  # kzfhir audit verify reads a SQLite file
async def test_the_cli_and_the_operation_agree_on_one_sqlite_file(server: Server) -> None:
    await some_traffic(server)
    assert values((await server.verify()).json())["verified"] is True
    assert main(["audit", "verify", "--database", str(server.settings.database)]) == 0
    seq = server.tamper()
    assert values((await server.verify()).json())["firstBrokenSeq"] == seq
    assert main(["audit", "verify", "--database", str(server.settings.database)]) == 1
