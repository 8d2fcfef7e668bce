"""The Kazakhstan topics added to the one event source, from the triggering act to the delivered
notification: a remote-service record submitted to the NEHP (TM-11), a data-subject request due (AC-16);
and the patient notices that now come from the same events (TM-09, TM-26)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.security.session import NOTIFY_TOPIC, URGENT_TOPIC
from fhir_server.subscriptions.service import installed
from fhir_server.subscriptions.topics import DATA_SUBJECT_REQUEST, NEHP_SUBMISSION
from tests.conftest import BASE
from tests.mappings.conftest import enrich, load_set
from tests.patient_ops.receivers import WebhookReceiver
from tests.subscriptions.conftest import FHIR_JSON, World, appointment, params, reading, subscription


@pytest.mark.req("TM-11")
async def test_a_record_submitted_to_the_nehp_is_notified_once(tmp_path: Path) -> None:
    receiver = WebhookReceiver()
    endpoint = await receiver.start()
    # open mode: the record set has no consent for a practitioner; access is proven in test_security.py
    settings = Settings(database=tmp_path / "n.sqlite", security_enabled=False, synchronous_full=False)
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE
        ) as c:
            subscriptions = installed(app.state.services)
            assert subscriptions is not None
            await subscriptions.start_worker(poll_seconds=0.02, base_backoff=0.05)
            for key, res in enrich(load_set()).items():
                r = await c.put(f"/{key}", json={k: v for k, v in res.items() if k != "meta"}, headers=FHIR_JSON)
                assert r.status_code in (200, 201), (key, r.text)
            patient = enrich(load_set())["Encounter/kz-encounter-1"]["subject"]["reference"]
            body = subscription(endpoint, topic=NEHP_SUBMISSION, filters=(f"Encounter?patient={patient}",))
            world = World(c, app, settings, receiver, endpoint)
            # the handshake first: a Subscription still `requested` is not matched (docs/subscriptions.md,
            # Status), and under load (xdist) the handshake could lose the race against the submission
            await world.subscribe(FHIR_JSON, body)
            for _ in range(2):  # the second submission of the same version queues nothing: no second event
                r = await c.post("/Encounter/kz-encounter-1/$nehp-submit", json={"resourceType": "Parameters"},
                                 headers=FHIR_JSON)
                assert r.status_code == 200, r.text
            [note] = await world.notifications(1)
            [event] = params(note)["notification-event"]
            assert event["focus"][0]["reference"].endswith("/Encounter/kz-encounter-1")
            assert note["entry"][1]["resource"]["resourceType"] == "Encounter"
            await asyncio.sleep(0.3)  # the worker polls every 0.02 s: a second event would be here by now
            assert len(world.of_kind("event-notification")) == 1
    finally:
        await receiver.stop()


@pytest.mark.req("AC-16")
async def test_a_data_subject_request_due_reaches_the_queue_not_others(world: World) -> None:
    admin = world.auth("admin", "Practitioner/adm1")
    mine = await world.subscribe(admin, subscription(world.endpoint, topic=DATA_SUBJECT_REQUEST,
                                                     filters=("Task?status=requested",)))
    dr2 = world.auth("practitioner", "Practitioner/dr2")  # may not read the request: never told of it
    await world.subscribe(dr2, subscription(world.endpoint + "?dr2", topic=DATA_SUBJECT_REQUEST, filters=()))
    r = await world.client.post("/Patient/p1/$data-subject-request", headers=world.auth("patient", "Patient/p1"),
                                json={"resourceType": "Parameters", "parameter": [
                                    {"name": "kind", "valueCode": "information"}]})
    assert r.status_code == 201, r.text
    task = r.json()
    [note] = await world.notifications(1)
    assert params(note)["subscription"]["reference"].endswith(f"/Subscription/{mine}")
    [event] = params(note)["notification-event"]
    assert event["focus"][0]["reference"].endswith(f"/Task/{task['id']}")
    due = note["entry"][1]["resource"]["restriction"]["period"]["end"]
    assert due == task["restriction"]["period"]["end"]  # the answer is due by then (3 working days)


def _outbox(items: list[Any]) -> list[dict[str, Any]]:
    return [orjson.loads(i.payload) for i in items]


@pytest.mark.req("TM-09")
@pytest.mark.req("TM-26")
async def test_patient_notices_come_from_the_same_events(world: World) -> None:
    """With no Subscription at all, the one event source still gives the participants their notices."""
    assert world.subscriptions.registry.all() == []
    p1 = world.auth("patient", "Patient/p1")
    booked = await world.write(p1, appointment())
    notices = _outbox(await world.store.outbox_partition(NOTIFY_TOPIC, "Practitioner/dr1", 50))
    assert any(n.get("about") == [{"reference": f"Appointment/{booked['id']}"}] for n in notices)
    high = await world.write(world.auth("practitioner", "Practitioner/dr1"), reading(200))
    urgent = _outbox(await world.store.outbox_partition(URGENT_TOPIC, "Patient/p1", 50))
    [alert] = [n for n in urgent if {"reference": f"Observation/{high['id']}"} in n.get("about", [])]
    assert alert["priority"] == "stat" and alert["recipient"] == [{"reference": "Patient/p1"}]
