"""Blocking of records (AC-26): an administrator blocks a record of patient p1; from then on it is hidden from
everyone but the patient on every path a caller reaches data by (the no-leak probes of issue 10: read, vread,
history, search with includes, Bundle entries, operations, $export), answering exactly like an unknown id;
every refused access is audited; lifting the block makes it visible again. Security is on."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fhir_server.security.policy.blocking import BLOCKED_REASON
from tests.orders.conftest import OpenWorld, World
from tests.security_http import leak_probes as probes
from tests.subscriptions.conftest import World as SubWorld
from tests.subscriptions.conftest import appointment, subscription, world

__all__ = ["world"]  # the subscriptions' world: a secured server, the delivery worker, a local receiver

BLOCKED = {"resourceType": "Observation", "id": "o-blocked", "status": "final", "code": {"text": "HIV test"},
           "subject": {"reference": "Patient/p1"}, "encounter": {"reference": "Encounter/e1"},
           "valueString": "positive"}
OPEN = {"resourceType": "Observation", "id": "o-open", "status": "final", "code": {"text": "pulse"},
        "subject": {"reference": "Patient/p1"}, "encounter": {"reference": "Encounter/e1"}, "valueString": "72"}
EXTRA: list[dict[str, Any]] = [
    BLOCKED, OPEN,
    *({"resourceType": "Provenance", "id": f"pv-{name}", "target": [{"reference": f"Observation/o-{name}"}],
       "recorded": "2026-01-20T10:30:00+05:00", "agent": [{"who": {"reference": "Practitioner/dr1"}}]}
      for name in ("blocked", "open")),
    {"resourceType": "Condition", "id": "cond1", "code": {"text": "flu"}, "subject": {"reference": "Patient/p1"}},
    {"resourceType": "Consent", "id": "c-export", "status": "active",
     "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
     "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
     "patient": {"reference": "Patient/p1"},
     "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
     "provision": {"provision": [{"type": "permit", "action": [{"coding": [{"code": "disclose"}]}],
                                  "actor": [{"role": {"coding": [{"code": "PRCP"}]},
                                             "reference": {"reference": "Practitioner/dr1"}}]}]}},
]


def _params(**values: Any) -> dict[str, Any]:
    out = []
    for name, value in values.items():
        for v in value if isinstance(value, list) else [value]:
            out.append({"name": name, "valueReference": {"reference": v}} if name in ("resource", "block", "request")
                       else {"name": name, "valueString": v})
    return {"resourceType": "Parameters", "parameter": out}


async def _probe(w: World, headers: dict[str, str]) -> probes.Seen:
    """Every path of the no-leak probes, for one caller, with o-blocked as the hidden target."""
    seen = probes.Seen()
    p = probes.Prober(w.client, headers, seen)
    hidden = [("Observation", "o-blocked")]
    await probes.searches(p, ["p1"], ["o-blocked", "o-open"])
    for url in ("/Encounter?_revinclude=Observation:encounter", "/Observation?_id=o-blocked,o-open",
                "/Flag?patient=Patient/p1", "/Patient?_revinclude=Flag:patient",
                "/Provenance?target=Observation/o-blocked", "/Provenance?patient=Patient/p1",
                "/Observation?code:text=HIV", "/Patient/p1/$everything", "/Observation?subject=Patient/p1&_count=1"):
        await p.get_all("search", url)
    await probes.histories(p, hidden)
    await probes.reads(p, [BLOCKED, OPEN], hidden)
    await probes.operations(p, hidden, [])
    await probes.bundles(p, hidden, ["p1"], ["o-blocked", "o-open"])
    return seen


def _ids(resources: list[dict[str, Any]]) -> set[str]:
    return {f"{r.get('resourceType')}/{r.get('id')}" for r in resources}


@pytest.mark.req("AC-26")
async def test_a_blocked_record_is_hidden_on_every_path_but_from_the_patient_and_the_block_is_reversible(
        open_world: OpenWorld) -> None:
    async with open_world(EXTRA) as w:
        doctor, patient, admin = w.as_("Practitioner/dr1"), w.as_("Patient/p1"), w.auth("admin", "Practitioner/adm1")
        # the compiled read by id has cached the doctor's verdict for p1's Observations before the block
        assert (await w.client.get("/Observation/o-blocked", headers=doctor)).status_code == 200
        assert (await w.client.get("/Observation/o-open", headers=doctor)).status_code == 200

        wanted = _params(resource="Observation/o-blocked", reason="accuracy disputed by the patient (AC-26)")
        for caller in (doctor, patient, w.auth("auditor", "Practitioner/aud1")):
            assert (await w.client.post("/Patient/p1/$block", json=wanted, headers=caller)).status_code == 403
        outside = await w.client.post("/Patient/p1/$block", headers=admin, json=_params(
            resource="Observation/nope", reason="x"))
        assert outside.status_code == 422 and "not a record" in outside.text
        no_reason = await w.client.post("/Patient/p1/$block", headers=admin,
                                        json=_params(resource="Observation/o-open"))
        assert no_reason.status_code == 400
        r = await w.client.post("/Patient/p1/$block", json=wanted, headers=admin)
        assert r.status_code == 201, r.text
        flag = r.json()["id"]

        # hidden on every path, answering like an unknown id; the rest of the record is still there
        seen = await _probe(w, doctor)
        assert "Observation/o-blocked" not in _ids(seen.resources)
        assert f"Flag/{flag}" not in _ids(seen.resources)  # nor is the block itself shown to the doctor
        assert "Observation/o-open" in _ids(seen.resources)
        assert "Provenance/pv-blocked" not in _ids(seen.resources)  # what names the record is hidden with it
        assert "Provenance/pv-open" in _ids(seen.resources)
        assert seen.pairs and [(probe, a, b) for probe, a, b in seen.pairs if a != b] == []
        assert not any(r.get("id") == "o-blocked" for r in seen.exported)
        assert any(r.get("id") == "o-open" for r in seen.exported)  # $export ran and exported the rest

        # break-glass and a legal exception do not lift a block; the patient sees the record and the block
        emergency = w.auth("practitioner", "Practitioner/dr2", break_glass="unconscious")
        assert (await w.client.get("/Observation/o-blocked", headers={**emergency, "X-Break-Glass-Reason":
                                                                      "unconscious"})).status_code == 404
        court = {**w.auth("legal-exception", "Practitioner/judge1"), "X-Legal-Basis": "court order 1/2026"}
        assert (await w.client.get("/Observation/o-open", headers=court)).status_code == 200
        assert (await w.client.get("/Observation/o-blocked", headers=court)).status_code == 404
        assert (await w.client.get("/Observation/o-blocked", headers=patient)).status_code == 200
        mine = (await w.client.get("/Flag?patient=Patient/p1", headers=patient)).json()
        assert [e["resource"]["id"] for e in mine["entry"]] == [flag]
        # nobody but the administrators writes or lifts a block
        lifted = {**mine["entry"][0]["resource"], "status": "inactive"}
        assert (await w.client.put(f"/Flag/{flag}", json=lifted, headers=patient)).status_code in (403, 404)
        assert (await w.client.post("/Patient/p1/$unblock", headers=doctor, json=_params(
            block=f"Flag/{flag}", reason="x"))).status_code == 403

        # audited: every refused access names the patient and the reason
        await w.store.audit.sync()
        events = [e for _, e in await w.store.audit.events("Patient/p1", 1000)]
        refused = [e for e in events if e.get("outcome") == "4" and e.get("outcomeDesc") == BLOCKED_REASON]
        assert any("Observation/o-blocked" in str(e.get("entity")) for e in refused)
        assert any(e.get("action") == "C" and f"Flag/{flag}" in str(e.get("entity")) for e in events)

        # reversible: lifting the block shows the record again, and the Flag's history says when and why
        r = await w.client.post("/Patient/p1/$unblock", headers=admin, json=_params(
            block=f"Flag/{flag}", reason="the check found the record accurate"))
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "inactive" and "end" in r.json()["period"]
        assert (await w.client.get("/Observation/o-blocked", headers=doctor)).status_code == 200
        found = (await w.client.get("/Observation?subject=Patient/p1", headers=doctor)).json()
        assert {"o-blocked", "o-open"} <= {e["resource"]["id"] for e in found["entry"]}
        again = await w.client.post("/Patient/p1/$unblock", headers=admin, json=_params(
            block=f"Flag/{flag}", reason="again"))
        assert again.status_code == 409


@pytest.mark.req("AC-26")
async def test_a_blocked_record_reaches_no_subscriber(world: SubWorld) -> None:
    """Subscriptions deliver under the owner's identity with the current facts: once a booking is blocked,
    its changes notify nobody but the patient would see; the patient's other records still notify."""
    dr1, p1 = world.auth("practitioner", "Practitioner/dr1"), world.auth("patient", "Patient/p1")
    admin = world.auth("admin", "Practitioner/adm1")
    await world.subscribe(dr1, subscription(world.endpoint))
    blocked = await world.write(p1, appointment())
    [first] = await world.notifications(1)
    assert blocked["id"] in str(first)  # before the block, the doctor is notified of the booking

    r = await world.client.post("/Patient/p1/$block", headers=admin, json=_params(
        resource=f"Appointment/{blocked['id']}", reason="disputed by the patient (AC-26)"))
    assert r.status_code == 201, r.text
    changed = await world.write(p1, {**blocked, "status": "cancelled"})  # a change the topic notifies
    assert changed["meta"]["versionId"] == "2"
    other = await world.write(p1, appointment(start="2026-12-11T09:00:00+05:00"))
    notes = await world.notifications(2)
    await asyncio.sleep(0.3)  # give a wrong delivery time to arrive
    after = world.of_kind("event-notification")[1:]
    assert len(after) == 1 and other["id"] in str(after[0])
    assert not any(blocked["id"] in str(note) for note in after), notes
