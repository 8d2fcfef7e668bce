"""Destruction on the patient's demand (AC-22): after a recorded decision, an administrator physically removes
the named resources — every version, every index row, the bytes in the database files — leaving tombstone
AuditEvents and a verifiable audit chain. Security is on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.orders.conftest import OpenWorld

MARKER = "MARKER-ZX81-collected-without-consent"


def _params(**values: Any) -> dict[str, Any]:
    out = []
    for name, value in values.items():
        for v in value if isinstance(value, list) else [value]:
            out.append({"name": name, "valueReference": {"reference": v}} if "/" in v and name != "change"
                       else {"name": name, "valueString": v})
    return {"resourceType": "Parameters", "parameter": out}


@pytest.mark.req("AC-22")
async def test_decided_destruction_removes_every_trace_but_the_tombstone(open_world: OpenWorld, tmp_path: Path):
    extra = [{"resourceType": "Observation", "id": "o-breach", "status": "final", "code": {"text": MARKER},
              "subject": {"reference": "Patient/p1"}, "valueString": MARKER},
             {"resourceType": "Observation", "id": "o-keep", "status": "final", "code": {"text": "pulse"},
              "subject": {"reference": "Patient/p1"}}]
    async with open_world(extra) as w:
        doctor, patient, admin = w.as_("Practitioner/dr1"), w.as_("Patient/p1"), w.auth("admin", "Practitioner/adm1")
        changed = (await w.client.get("/Observation/o-breach", headers=doctor)).json()
        changed["note"] = [{"text": f"{MARKER} again"}]
        assert (await w.client.put("/Observation/o-breach", json=changed, headers=doctor)).status_code == 200

        r = await w.client.post("/Patient/p1/$data-subject-request", headers=patient, json=_params(
            kind="destruction", description="collected without my consent", change="Observation/o-breach"))
        assert r.status_code == 201, r.text
        task = r.json()["id"]
        wanted = _params(request=f"Task/{task}", resource="Observation/o-breach")
        assert (await w.client.post("/Patient/p1/$expunge", json=wanted, headers=doctor)).status_code == 403
        early = await w.client.post("/Patient/p1/$expunge", json=wanted, headers=admin)
        assert early.status_code == 422 and "not decided" in early.text
        answer = _params(outcome="completed", reason="collected in breach of the rules: no consent (AC-22)")
        assert (await w.client.post(f"/Task/{task}/$dsr-answer", json=answer, headers=admin)).status_code == 200
        other = await w.client.post("/Patient/p1/$expunge", headers=admin,
                                    json=_params(request=f"Task/{task}", resource="Observation/o-keep"))
        assert other.status_code == 422 and "not named" in other.text

        r = await w.client.post("/Patient/p1/$expunge", json=wanted, headers=admin)
        assert r.status_code == 200, r.text
        assert r.json()["parameter"][0]["part"][1]["valueInteger"] == 2  # both versions
        # gone on every path, for everyone: read, history, version, search; the rest of the record stays
        for path in ("/Observation/o-breach", "/Observation/o-breach/_history", "/Observation/o-breach/_history/1"):
            assert (await w.client.get(path, headers=doctor)).status_code == 404, path
        found = (await w.client.get("/Observation?subject=Patient/p1", headers=patient)).json()
        assert [e["resource"]["id"] for e in found["entry"]] == ["o-keep"]
        assert MARKER not in (await w.client.get("/Observation/_history", headers=doctor)).text
        again = await w.client.post("/Patient/p1/$expunge", json=wanted, headers=admin)
        assert again.status_code == 404  # nothing to bring back, nothing to destroy twice

        # the tombstone: what, why and by whom, never the content; the chain still verifies
        await w.store.audit.sync()
        report = await w.store.audit.verify([])
        assert report.ok, report.problem
        events = [e for _, e in await w.store.audit.events("Patient/p1", 200)]
        tombstones = [e for e in events if e.get("action") == "D"
                      and any("Observation/o-breach" in str(x.get("what")) for x in e.get("entity", []))]
        assert len(tombstones) == 1
        text = str(tombstones[0])
        assert f"Task/{task}" in text and "Practitioner/adm1" in text and MARKER not in text
        log = await w.client.get("/Patient/p1/$access-log?_count=100", headers=patient)
        assert "Observation/o-breach" in log.text and MARKER not in log.text
    for file in tmp_path.glob("db.sqlite*"):
        assert MARKER.encode() not in file.read_bytes(), file.name
