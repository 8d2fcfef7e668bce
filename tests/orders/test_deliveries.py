"""Rejected NEHP deliveries surface for the administrators (TM-11, TM-13): the NEHP refuses a record (a real
local HTTP receiver answering ack-v1 ``rejected``), the worker gives it up at once, and ``GET $deliveries``
lists it with the NEHP's reason and the patient, never the payload; nobody but administrators may ask.
Security is on. The console page over it: tests/portal/test_deliveries_page.py."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from fhir_server.jobs.delivery_audit import is_delivery
from fhir_server.jobs.runtime import NEHP_TOPIC, build_worker
from tests.orders.conftest import OpenWorld, World
from tests.orders.doubles import AckingReceiver

SECRET_VALUE = "MARKER-clinical-content-of-the-record"


async def reject_one(w: World, nehp_settings: Any) -> None:
    """A NEHP message queued as nehp_submit queues it, delivered to a NEHP that rejects it."""
    payload = orjson.dumps({"record": {"diagnosis": SECRET_VALUE}})
    await w.store.transaction(lambda view: view.enqueue(NEHP_TOPIC, "Patient/p1", "rec-e1-1", payload))
    worker = build_worker(nehp_settings, w.store, services=w.app.state.services, base_backoff=0.0)
    assert worker is not None
    await worker.run_once()


def requestor(event: dict[str, Any]) -> str:
    return next((a["who"].get("reference", "") for a in event.get("agent", []) if a.get("requestor")), "")


def rows(answer: dict[str, Any]) -> list[dict[str, Any]]:
    return [{p["name"]: next(v for k, v in p.items() if k.startswith("value")) for p in item["part"]}
            for item in answer.get("parameter", []) if item["name"] == "delivery"]


@pytest.mark.req("TM-11")
@pytest.mark.req("TM-13")
async def test_a_rejected_nehp_delivery_is_listed_for_administrators_with_the_reason(open_world: OpenWorld):
    nehp = AckingReceiver(reject="unknown service code A01.002")
    url = await nehp.start()
    try:
        async with open_world(nehp_url=url) as w:
            await w.app.state.outbox_worker.stop()  # the test drives the delivery itself
            await reject_one(w, w.settings)
            assert len(nehp.bodies) == 1
            admin = w.auth("admin", "Practitioner/adm1")
            r = await w.client.get("/$deliveries", headers=admin)
            assert r.status_code == 200, r.text
            [row] = rows(r.json())
            assert row["status"] == "dead" and row["topic"] == "nehp" and row["attempts"] == 1
            assert "unknown service code A01.002" in row["error"] and row["patient"] == {"reference": "Patient/p1"}
            assert SECRET_VALUE not in r.text  # the payload is never shown
            assert rows((await w.client.get("/$deliveries?status=delivered", headers=admin)).json()) == []
            assert rows((await w.client.get("/$deliveries?topic=payment", headers=admin)).json()) == []
            bad = await w.client.get("/$deliveries?topic=mail", headers=admin)
            assert bad.status_code == 400 and bad.json()["issue"][0]["expression"] == ["topic"]
            for caller in (w.as_("Practitioner/dr1"), w.as_("Patient/p1"), w.auth("auditor", "Practitioner/a1")):
                assert (await w.client.get("/$deliveries", headers=caller)).status_code == 403

            # audited (TM-13): the given-up transfer under the patient, with the NEHP's reason; each look at the
            # list by the administrator, and each refused one, under the caller
            await w.store.audit.sync()
            given_up = [e for _, e in await w.store.audit.events("Patient/p1", 200) if is_delivery(e)]
            assert [(e["outcome"], e["entity"][0]["what"]["identifier"]["value"]) for e in given_up] == [
                ("8", "rec-e1-1")]
            assert "unknown service code A01.002" in given_up[0]["outcomeDesc"]
            assert SECRET_VALUE not in str(given_up)
            looks = [e for _, e in await w.store.audit.events(None, 500)
                     if "$deliveries" in str(e.get("entity")) and not is_delivery(e)]
            by_outcome = sorted((e["outcome"], requestor(e)) for e in looks)
            assert by_outcome.count(("0", "Practitioner/adm1")) == 3  # dead, delivered, payment
            assert any(requestor(e) == "Practitioner/adm1" and e["outcome"] == "4" and "topic must be one of" in
                       e.get("outcomeDesc", "") for _, e in await w.store.audit.events(None, 500))  # the bad request
            # the refused ones, and the administrator's bad request, now recorded naming the operation too
            assert {who for outcome, who in by_outcome if outcome == "4"} == {
                "Practitioner/dr1", "Patient/p1", "Practitioner/a1", "Practitioner/adm1"}
    finally:
        await nehp.stop()
