"""A notification carries only what the subscription's owner may see, and a Subscription is its owner's
(issue 15 §4; docs/subscriptions.md "Access")."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from fhir_server.security.policy.owned import OWNER_EXTENSION
from tests.subscriptions.conftest import BIN, World, appointment, consent, params, subscription


async def _owned(world: World) -> tuple[str, dict[str, str]]:
    dr1 = world.auth("practitioner", "Practitioner/dr1")
    return await world.subscribe(dr1, subscription(world.endpoint)), dr1


OTHERS = {
    "another practitioner": ("practitioner", "Practitioner/dr2", {}),
    "the patient": ("patient", "Patient/p1", {}),
    "a related person": ("related-person", "RelatedPerson/rp9", {}),
    "a system": ("system", None, {"bin": BIN}),
    "legal exception": ("legal-exception", "Practitioner/dr2", {"extra_claims": {"legal_basis": "court order 1"}}),
}


@pytest.mark.req("AC-12")
@pytest.mark.parametrize("who", sorted(OTHERS))
async def test_only_the_owner_sees_and_changes_a_subscription(world: World, who: str) -> None:
    sid, dr1 = await _owned(world)
    role, user, kwargs = OTHERS[who]
    other = world.auth(role, user, **kwargs)
    assert (await world.client.get(f"/Subscription/{sid}", headers=other)).status_code == 404
    found = (await world.client.get("/Subscription", headers=other)).json()
    assert all(e["resource"]["id"] != sid for e in found.get("entry", []))
    for op in ("", "/$status", "/$events", "/_history"):  # hidden means absent: the answer for an unknown id
        hidden = await world.client.get(f"/Subscription/{sid}{op}", headers=other)
        unknown = await world.client.get(f"/Subscription/no-such-id{op}", headers=other)
        assert hidden.status_code == unknown.status_code and hidden.status_code in (403, 404)
        assert hidden.text.replace(sid, "no-such-id") == unknown.text
    body = {**subscription("https://attacker.example/hook"), "id": sid}
    assert (await world.client.put(f"/Subscription/{sid}", json=body, headers=other)).status_code in (403, 405)
    assert (await world.client.delete(f"/Subscription/{sid}", headers=other)).status_code in (204, 403)
    kept = (await world.client.get(f"/Subscription/{sid}", headers=dr1)).json()
    assert kept["channel"]["endpoint"] == world.endpoint
    assert (await world.client.get(f"/Subscription/{sid}/$status", headers=dr1)).status_code == 200


async def test_the_owner_and_an_admin_may_read_and_delete(world: World) -> None:
    sid, dr1 = await _owned(world)
    admin = world.auth("admin", "Practitioner/admin1")
    assert (await world.client.get(f"/Subscription/{sid}", headers=admin)).status_code == 200
    assert (await world.client.get(f"/Subscription/{sid}/$status", headers=admin)).status_code == 200
    listed = (await world.client.get("/Subscription", headers=dr1)).json()
    assert [e["resource"]["id"] for e in listed["entry"]] == [sid]
    assert (await world.client.delete(f"/Subscription/{sid}", headers=admin)).status_code == 204
    assert (await world.client.get(f"/Subscription/{sid}", headers=dr1)).status_code == 410
    assert world.subscriptions.registry.get(sid) is None


async def test_an_auditor_is_refused(world: World) -> None:
    sid, _ = await _owned(world)
    auditor = world.auth("auditor", "Practitioner/aud1")
    assert (await world.client.get(f"/Subscription/{sid}", headers=auditor)).status_code == 403
    assert (await world.client.post("/Subscription", json=subscription(world.endpoint),
                                    headers=auditor)).status_code == 403


async def test_the_owner_cannot_be_forged_or_changed(world: World) -> None:
    dr2 = world.auth("practitioner", "Practitioner/dr2")
    forged = subscription(world.endpoint, extension=[{"url": OWNER_EXTENSION, "valueString": "Practitioner/dr1|"}])
    sid = await world.subscribe(dr2, forged)
    stored = (await world.client.get(f"/Subscription/{sid}", headers=dr2)).json()
    assert [e["valueString"] for e in stored["extension"] if e["url"] == OWNER_EXTENSION] == ["Practitioner/dr2|"]
    dr1 = world.auth("practitioner", "Practitioner/dr1")
    assert (await world.client.get(f"/Subscription/{sid}", headers=dr1)).status_code == 404
    admin = world.auth("admin", "Practitioner/admin1")
    stored.pop("meta")
    r = await world.client.put(f"/Subscription/{sid}", json={**stored, "reason": "changed by admin"}, headers=admin)
    assert r.status_code == 200, r.text
    assert [e["valueString"] for e in r.json()["extension"] if e["url"] == OWNER_EXTENSION] == ["Practitioner/dr2|"]


@pytest.mark.req("AC-12")
async def test_a_subscriber_without_consent_gets_nothing_of_the_patient(world: World) -> None:
    dr2 = world.auth("practitioner", "Practitioner/dr2")  # no Consent of p1 names dr2
    sid = await world.subscribe(dr2, subscription(world.endpoint))
    dr1 = world.auth("practitioner", "Practitioner/dr1")
    sid1 = await world.subscribe(dr1, subscription(world.endpoint, content="id-only"))
    await world.write(world.auth("patient", "Patient/p1"), appointment())
    [note] = await world.notifications(1)
    assert params(note)["subscription"]["reference"].endswith(sid1)
    await asyncio.sleep(0.3)  # give a wrong delivery time to arrive
    assert len(world.of_kind("event-notification")) == 1
    assert await world.store.outbox_partition("subscription", f"Subscription/{sid}", 10) == [
        i for i in await world.store.outbox_partition("subscription", f"Subscription/{sid}", 10)
        if orjson.loads(i.payload)["kind"] == "handshake"]
    status = (await world.client.get(f"/Subscription/{sid}/$status", headers=dr2)).json()
    assert params({"entry": [status["entry"][0]]})["events-since-subscription-start"] == "0"


@pytest.mark.req("AC-18")
async def test_a_revoked_consent_stops_the_content_of_queued_events(world: World) -> None:
    await _owned(world)
    worker = world.subscriptions.worker
    assert worker is not None
    await worker.stop()  # the event waits in the outbox while the patient revokes
    p1 = world.auth("patient", "Patient/p1")
    await world.write(p1, appointment())
    revoked = consent("c1", "p1", "Practitioner/dr1", status="inactive")
    await world.write(p1, revoked)
    await world.subscriptions.start_worker(poll_seconds=0.02, base_backoff=0.05)
    [note] = await world.notifications(1)
    [event] = params(note)["notification-event"]
    assert "focus" not in event and len(note["entry"]) == 1  # the event number, nothing of the patient


@pytest.mark.req("TM-13")
async def test_a_delivery_of_patient_data_is_audited_as_the_owners_read(world: World) -> None:
    await _owned(world)
    booked = await world.write(world.auth("patient", "Patient/p1"), appointment())
    await world.notifications(1)

    async def audited() -> bool:
        await world.store.audit.sync()
        events = [e for _, e in await world.store.audit.events("Patient/p1", 200)]
        return any(any((ent.get("what") or {}).get("reference", "").startswith(f"Appointment/{booked['id']}")
                       for ent in e.get("entity", []))
                   and any((a.get("who") or {}).get("reference") == "Practitioner/dr1" for a in e.get("agent", []))
                   and "Subscription/" in str(e) for e in events)

    await world.until(audited, True)
