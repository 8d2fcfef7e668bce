"""Encounter/$nehp-submit: the MD-D record to the NEHP and the claim line to the payment system,
through the durable outbox to real local receivers (TM-11, TM-13, TM-19)."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import httpx
import pytest

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.jobs.runtime import build_worker
from tests.conftest import BASE
from tests.mappings.conftest import enrich, load_set
from tests.patient_ops.receivers import WebhookReceiver

# FHIR semantics, not access: the server runs in open mode (security: tests/security_http/).
pytestmark = pytest.mark.open_mode

FHIR_JSON = {"content-type": "application/fhir+json"}


@pytest.mark.req("TM-11")
@pytest.mark.req("TM-19")
@pytest.mark.req("TM-13")
async def test_submission_reaches_the_nehp_and_the_payment_system(tmp_path: Path):
    nehp, payment = WebhookReceiver(statuses=[503]), WebhookReceiver()
    settings = Settings(database=tmp_path / "n.sqlite", security_enabled=False, synchronous_full=False,
                        nehp_url=await nehp.start(), nehp_secret="s3cret", payment_url=await payment.start())
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE
        ) as c:
            await app.state.outbox_worker.stop()  # the test drives deliveries itself
            for key, res in enrich(load_set()).items():
                res = {k: v for k, v in res.items() if k != "meta"}
                r = await c.put(f"/{key}", json=res, headers=FHIR_JSON)
                assert r.status_code in (200, 201), (key, r.text)
            r = await c.post("/Encounter/kz-encounter-1/$nehp-submit", headers=FHIR_JSON, json={
                "resourceType": "Parameters"})
            assert r.status_code == 200, r.text
            names = {p["name"]: p.get("valueString") for p in r.json()["parameter"]}
            assert names["nehp"].startswith("urn:uuid:") and names["payment"].startswith("urn:uuid:")
            again = await c.post("/Encounter/kz-encounter-1/$nehp-submit", headers=FHIR_JSON,
                                 json={"resourceType": "Parameters"})
            assert {p["name"]: p.get("valueString") for p in again.json()["parameter"]}["nehp"] == names["nehp"]
            worker = build_worker(settings, app.state.services.store, base_backoff=0.0)
            assert worker is not None
            await worker.run_once()  # the NEHP answers 503 first: retried
            await worker.run_once()
            assert len(nehp.accepted) == 1 and len(payment.accepted) == 1  # resubmission queued nothing new
            delivered = nehp.accepted[0]
            expected = hmac.new(b"s3cret", delivered.body, hashlib.sha256).hexdigest()
            assert delivered.headers["x-kzfhir-signature"] == f"sha256={expected}"
            message = json.loads(delivered.body)["payload"]
            assert message["recordId"] == names["nehp"]
            assert message["patient"]["iin"] == "850315300019"
            assert "J06.9" in {d["icd10"]["code"] for d in message["diagnoses"]}
            line = json.loads(payment.accepted[0].body)["payload"]
            assert line["patient_iin"] == "850315300019"
    finally:
        await nehp.stop()
        await payment.stop()


@pytest.mark.req("MD-D")
async def test_incomplete_record_is_refused_naming_the_missing_items(client):
    resources = enrich(load_set())
    encounter = dict(resources["Encounter/kz-encounter-1"])
    encounter.pop("meta", None)
    encounter["extension"] = [e for e in encounter.get("extension", []) if "telecom-channel" not in e["url"]]
    for key, res in resources.items():
        if key != "Encounter/kz-encounter-1":
            await client.put(f"/{key}", json={k: v for k, v in res.items() if k != "meta"}, headers=FHIR_JSON)
    assert (await client.put("/Encounter/kz-encounter-1", json=encounter, headers=FHIR_JSON)).status_code == 201
    r = await client.post("/Encounter/kz-encounter-1/$nehp-submit", json={"resourceType": "Parameters"},
                          headers=FHIR_JSON)
    assert r.status_code == 422
    assert "2" in r.json()["issue"][0]["diagnostics"]  # MD-D item 2: the telecommunication means
    assert (await client.post("/Encounter/none/$nehp-submit", json={"resourceType": "Parameters"},
                              headers=FHIR_JSON)).status_code == 404
