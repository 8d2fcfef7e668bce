"""A finished remote service reaches the NEHP and the payment system without $nehp-submit; the NEHP's
acknowledgement id is written back onto the Encounter; a rejection is given up at once (TM-11, TM-13, TM-19)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from hypothesis import given

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.jobs.nehp_delivery import NEHP_RECORD_SYSTEM, ack_errors
from fhir_server.jobs.runtime import build_worker
from mappings.payment import COLUMNS, ClaimLine
from mappings.payment.claim_line import to_json as line_json
from tests.conftest import BASE
from tests.mappings.conftest import enrich, load_set
from tests.mappings.strategies import claim_lines
from tests.orders.doubles import ACK, AckingReceiver

# delivery semantics, not access (security: tests/orders/test_scenario.py walks it with security on)
pytestmark = pytest.mark.open_mode
FHIR_JSON = {"content-type": "application/fhir+json"}
ROOT = Path(__file__).resolve().parents[2]
CLAIM_LINE_SCHEMA = json.loads((ROOT / "docs" / "schemas" / "payment-claim-line-v1.json").read_text("utf-8"))


def claim_line_errors(line: Any) -> list[str]:
    """What in a delivered claim line does not fit the published schema (docs/schemas/payment-claim-line-v1.json)."""
    validator = jsonschema.Draft202012Validator(CLAIM_LINE_SCHEMA, format_checker=jsonschema.FormatChecker())
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(line)]


async def _finish(c: httpx.AsyncClient) -> None:
    for key, res in enrich(load_set()).items():
        res = {k: v for k, v in res.items() if k != "meta"}
        if key == "Encounter/kz-encounter-1":
            res["status"] = "in-progress"
        assert (await c.put(f"/{key}", json=res, headers=FHIR_JSON)).status_code in (200, 201)
    encounter = (await c.get("/Encounter/kz-encounter-1")).json()
    assert (await c.put("/Encounter/kz-encounter-1", json={**encounter, "status": "finished"},
                        headers=FHIR_JSON)).status_code == 200


@pytest.mark.req("TM-11")
@pytest.mark.req("TM-13")
@pytest.mark.req("TM-19")
async def test_a_finished_service_is_delivered_and_the_nehp_id_written_back(tmp_path: Path):
    nehp, payment = AckingReceiver(), AckingReceiver()
    settings = Settings(database=tmp_path / "a.sqlite", security_enabled=False, synchronous_full=False,
                        nehp_auto_submit=True, nehp_url=await nehp.start(), payment_url=await payment.start())
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
            await app.state.outbox_worker.stop()  # the test drives deliveries itself
            await _finish(c)
            worker = build_worker(settings, app.state.services.store, services=app.state.services,
                                  base_backoff=0.0)
            assert worker is not None
            await worker.run_once()  # the build request → the NEHP message and the claim line
            await worker.run_once()
            assert len(nehp.bodies) == 1 and len(payment.bodies) == 1
            line = payment.bodies[0]["payload"]
            assert claim_line_errors(line) == []  # what went out is the published format (TM-19)
            assert isinstance(line, dict) and line["patient_iin"] == "850315300019"
            assert list(line) == [c for c in COLUMNS if c in line]  # keys in column order
            encounter = (await c.get("/Encounter/kz-encounter-1")).json()
            assert {"system": NEHP_RECORD_SYSTEM, "value": "NEHP-1"} in encounter["identifier"]
            await worker.run_once()  # the write-back is not a new end of the service: nothing more is sent
            assert len(nehp.bodies) == 1
            events = [e for _, e in await app.state.services.store.audit.events(None, 200)]
            acks = {d["valueString"] for e in events for ent in e.get("entity", [])
                    for d in ent.get("detail", []) if d.get("type") == "acknowledgement"}
            assert {"NEHP-1"} <= acks  # the receipt is documented (TM-13)
    finally:
        await nehp.stop()
        await payment.stop()


@pytest.mark.req("TM-11")
async def test_a_rejected_record_is_given_up_at_once_with_its_reason(tmp_path: Path):
    nehp = AckingReceiver(reject="unknown service code")
    settings = Settings(database=tmp_path / "r.sqlite", security_enabled=False, synchronous_full=False,
                        nehp_auto_submit=True, nehp_url=await nehp.start())
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
            await app.state.outbox_worker.stop()
            await _finish(c)
            store = app.state.services.store
            worker = build_worker(settings, store, services=app.state.services, base_backoff=0.0)
            assert worker is not None
            await worker.run_once()
            await worker.run_once()
            await worker.run_once()
            assert len(nehp.bodies) == 1  # not retried
            rows = await store.outbox_partition("nehp", "Patient/kz-patient-1", 10)
            assert rows[0].status == "dead" and "unknown service code" in (rows[0].last_error or "")
    finally:
        await nehp.stop()


def test_published_schemas_are_the_ones_the_server_uses():
    for package, published in (("ack-v1.json", "nehp-ack-v1.json"), ("schema-v1.json", "nehp-record-v1.json")):
        served = (ROOT / "mappings" / "nehp" / package).read_bytes()
        assert served == (ROOT / "docs" / "schemas" / published).read_bytes()
    assert ack_errors({"schema": ACK, "message": "k", "status": "accepted"})  # accepted needs its id
    assert not ack_errors({"schema": ACK, "message": "k", "status": "rejected", "reason": "r"})


def test_the_published_claim_line_schema_names_every_column_and_only_those():
    assert CLAIM_LINE_SCHEMA["properties"].keys() == set(COLUMNS)
    assert set(CLAIM_LINE_SCHEMA["required"]) < set(COLUMNS)
    jsonschema.Draft202012Validator.check_schema(CLAIM_LINE_SCHEMA)


@pytest.mark.req("TM-19")
@given(line=claim_lines)
def test_every_claim_line_the_server_can_send_fits_the_published_schema(line: ClaimLine):
    assert claim_line_errors(line_json(line)) == []


@pytest.mark.req("AC-26")
@pytest.mark.req("TM-11")
async def test_a_blocked_service_is_held_until_the_block_is_lifted(tmp_path: Path):
    from fhir_server.security.policy.blocking import BLOCKED_CODE, BLOCKED_RESOURCE_URL, PROCESSING_SYSTEM

    nehp, payment = AckingReceiver(), AckingReceiver()
    settings = Settings(database=tmp_path / "b.sqlite", security_enabled=False, synchronous_full=False,
                        nehp_auto_submit=True, nehp_url=await nehp.start(), payment_url=await payment.start())
    app = create_app(settings)
    block = {"resourceType": "Flag", "id": "block1", "status": "active",
             "extension": [{"url": BLOCKED_RESOURCE_URL, "valueReference": {"reference": "Condition/kz-condition-1"}}],
             "code": {"coding": [{"system": PROCESSING_SYSTEM, "code": BLOCKED_CODE}], "text": "disputed"},
             "subject": {"reference": "Patient/kz-patient-1"}, "period": {"start": "2026-01-01T00:00:00Z"}}
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
            await app.state.outbox_worker.stop()
            assert (await c.put("/Flag/block1", json=block, headers=FHIR_JSON)).status_code == 201
            await _finish(c)
            store = app.state.services.store
            worker = build_worker(settings, store, services=app.state.services, base_backoff=0.0)
            assert worker is not None
            await worker.run_once()
            await worker.run_once()
            assert nehp.bodies == [] and payment.bodies == []  # the blocked diagnosis goes nowhere
            [held] = await store.outbox_partition("nehp-build", "Patient/kz-patient-1", 10)
            assert held.status == "pending" and "Condition/kz-condition-1 blocked" in (held.last_error or "")

            lifted = {**block, "status": "inactive", "period": {**block["period"], "end": "2026-01-02T00:00:00Z"}}
            assert (await c.put("/Flag/block1", json=lifted, headers=FHIR_JSON)).status_code == 200
            await worker.run_once()
            await worker.run_once()
            assert len(nehp.bodies) == 1 and len(payment.bodies) == 1  # sent once the block is lifted
    finally:
        await nehp.stop()
        await payment.stop()
