"""Notifications of every use (AC-18): durable outbox -> worker -> a REAL local webhook / SMTP
receiver, with retries, HMAC signatures, digests, delivery audit (TM-13) and the patient's list."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.patient_ops.conftest import SECRET, OpenWorld, World, outbox_settles, running_worker
from tests.patient_ops.receivers import SmtpReceiver, WebhookReceiver

NOTIFICATIONS = "/Patient/p1/$notifications"


def _communications(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry", [])]


async def _doctor_reads(world: World, times: int = 1, *, each_chained: bool = True) -> None:
    """The doctor reads Observation/o1 ``times`` times. Reads are chained (and their notices queued)
    in batches; ``each_chained`` chains each read before the next, so each gets its own message."""
    doctor = world.auth("practitioner", "Practitioner/dr1")
    for _ in range(times):
        assert (await world.client.get("/Observation/o1", headers=doctor)).status_code == 200
        if each_chained:
            await world.store.audit.sync()


def _lines(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The access-log lines of a notification message (a message of chained reads lists several)."""
    return list(payload["items"]) if payload.get("digest") else [payload]


def _signature_ok(body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


@pytest.mark.req("AC-18")
@pytest.mark.req("TM-13")
async def test_use_is_delivered_to_a_real_webhook_after_a_failed_attempt(open_world: OpenWorld,
                                                                          receiver: WebhookReceiver) -> None:
    receiver.statuses = [500]  # the cabinet adapter is down at first
    url = await receiver.start()
    async with open_world(notify_webhook_url=url, notify_webhook_secret=SECRET) as world:
        async with running_worker(world):
            await _doctor_reads(world)
            await outbox_settles(world, lambda items: [i.status for i in items] == ["delivered"])

        first, second = receiver.requests[0], receiver.requests[1]
        assert (first.status, second.status) == (500, 200)
        assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
        assert _signature_ok(second.body, second.headers["x-kzfhir-signature"])
        assert not _signature_ok(second.body.replace(b"dr1", b"dr9"), second.headers["x-kzfhir-signature"])
        message = json.loads(second.body)
        assert message["topic"] == "notification"
        assert message["payload"]["patient"] == "Patient/p1"
        [line] = _lines(message["payload"])
        assert line["who"] == "Practitioner/dr1" and line["patient"] == "Patient/p1"
        assert line["what"] == ["Observation/o1/_history/1"]

        listed = _communications((await world.get(NOTIFICATIONS, world.auth("patient", "Patient/p1"))).json())
        assert listed[0]["status"] == "completed" and listed[0]["sent"]
        assert listed[0]["identifier"][0]["value"] == second.headers["idempotency-key"]
        assert "Practitioner/dr1" in listed[0]["payload"][0]["contentString"]

        # TM-13: the delivery is in the audit chain, filed under the patient
        log = (await world.get("/Patient/p1/$access-log", world.auth("auditor", "Practitioner/dr2"),
                               deliveries="true")).json()
        deliveries = [e["resource"] for e in log["entry"] if e["resource"]["type"]["code"] == "110106"]
        assert len(deliveries) == 1 and deliveries[0]["outcome"] == "0"
        plain = (await world.get("/Patient/p1/$access-log", world.auth("patient", "Patient/p1"))).json()
        assert all(e["resource"]["type"]["code"] != "110106" for e in plain["entry"])


@pytest.mark.req("AC-18")
async def test_digest_groups_several_notifications_into_one_delivery(open_world: OpenWorld,
                                                                     receiver: WebhookReceiver) -> None:
    url = await receiver.start()
    shift = [timedelta(0)]  # the worker's clock, moved forward by the test

    def clock() -> datetime:
        return datetime.now(UTC) + shift[0]

    async with open_world(notify_webhook_url=url, notify_digest_seconds=3600) as world:
        async with running_worker(world, clock=clock):
            await _doctor_reads(world, 3)
            await asyncio.sleep(0.3)
            assert receiver.requests == [], "held back until the oldest is a digest period old"
            shift[0] = timedelta(seconds=3601)
            await outbox_settles(world, lambda items: [i.status for i in items] == ["delivered"] * 3)
        assert len(receiver.requests) == 1
        digest = json.loads(receiver.requests[0].body)["payload"]
        assert digest["digest"] is True and digest["count"] == 3
        assert {item["who"] for item in digest["items"]} == {"Practitioner/dr1"} and len(digest["items"]) == 3
        listed = _communications((await world.get(NOTIFICATIONS, world.auth("patient", "Patient/p1"))).json())
        assert [c["status"] for c in listed] == ["completed"] * 3


@pytest.mark.req("AC-18")
@pytest.mark.req("AC-02")
async def test_break_glass_notice_is_sent_at_once_even_with_a_digest(open_world: OpenWorld,
                                                                     receiver: WebhookReceiver) -> None:
    url = await receiver.start()
    async with open_world(notify_webhook_url=url, notify_digest_seconds=3600) as world:
        async with running_worker(world):
            emergency = world.auth("practitioner", "Practitioner/dr2", break_glass="unconscious")
            assert (await world.client.get("/Observation/o1", headers=emergency)).status_code == 200
            await outbox_settles(world, lambda items: any(i.status == "delivered" for i in items))
            await asyncio.sleep(0.1)  # further rounds must not send the routine one before its digest
        message = json.loads(receiver.requests[0].body)
        assert message["topic"] == "notification-urgent"
        assert message["payload"]["resourceType"] == "Communication"
        assert "unconscious" in message["payload"]["payload"][0]["contentString"]
        listed = _communications((await world.get(NOTIFICATIONS, world.auth("patient", "Patient/p1"))).json())
        by_priority = {c["priority"]: c["status"] for c in listed}
        assert by_priority == {"urgent": "completed", "routine": "preparation"}


@pytest.mark.req("AC-18")
@pytest.mark.req("TM-13")
async def test_message_is_given_up_after_the_last_attempt_and_shown_as_not_done(
        open_world: OpenWorld, receiver: WebhookReceiver) -> None:
    receiver.statuses = [503] * 10
    url = await receiver.start()
    async with open_world(notify_webhook_url=url) as world:
        async with running_worker(world, max_attempts=2):
            await _doctor_reads(world)
            await outbox_settles(world, lambda items: [i.status for i in items] == ["dead"])
        listed = _communications((await world.get(NOTIFICATIONS, world.auth("patient", "Patient/p1"))).json())
        assert listed[0]["status"] == "not-done"
        assert "2 attempts" in listed[0]["statusReason"]["text"]
        assert "127.0.0.1" not in json.dumps(listed)  # the channel's error text is not shown
        log = (await world.get("/Patient/p1/$access-log", world.auth("auditor", "Practitioner/dr2"),
                               deliveries="true")).json()
        dead = [e["resource"] for e in log["entry"] if e["resource"]["type"]["code"] == "110106"]
        assert dead[0]["outcome"] == "8"


@pytest.mark.req("AC-18")
async def test_email_goes_to_the_patients_address_through_a_real_smtp_relay(open_world: OpenWorld) -> None:
    smtp = SmtpReceiver()
    port = await smtp.start()
    try:
        settings = {"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_sender": "kzfhir@example.kz"}
        async with open_world(**settings) as world, running_worker(world):
            await _doctor_reads(world)
            await outbox_settles(world, lambda items: [i.status for i in items] == ["delivered"])
    finally:
        await smtp.stop()
    recipients, data = smtp.messages[0]
    assert recipients == ["p1@example.kz"]
    assert b"Practitioner/dr1" in data


@pytest.mark.req("AC-18")
async def test_patient_lists_their_notifications_newest_first_in_pages(world: World) -> None:
    await _doctor_reads(world, 3)
    patient = world.auth("patient", "Patient/p1")
    first = (await world.get(NOTIFICATIONS, patient, _count=2)).json()
    page = _communications(first)
    assert [c["status"] for c in page] == ["preparation", "preparation"]  # no channel configured
    following = next(link["url"] for link in first["link"] if link["relation"] == "next")
    rest = _communications((await world.client.get(following, headers=patient)).json())
    numbers = [int(c["id"].split("-")[1]) for c in page + rest]
    assert numbers == sorted(numbers, reverse=True) and len(numbers) == len(set(numbers)) == 3
    assert all(not world.validator.validate(c) for c in page + rest)


@pytest.mark.req("AC-18")
async def test_notifications_are_private_to_the_patient_and_oversight(world: World) -> None:
    await _doctor_reads(world)
    assert (await world.get(NOTIFICATIONS, world.auth("patient", "Patient/p2"))).status_code == 404
    assert (await world.get(NOTIFICATIONS, world.auth("practitioner", "Practitioner/dr1"))).status_code == 404
    representative = world.auth("related-person", "RelatedPerson/rp1")
    assert (await world.get(NOTIFICATIONS, representative)).status_code == 200
    assert (await world.get(NOTIFICATIONS, world.auth("auditor", "Practitioner/dr2"))).status_code == 200


@pytest.mark.req("TM-13")
def test_delivery_audit_events_are_valid_r4_audit_events_filed_under_the_patient() -> None:
    from fhir_server.jobs.delivery_audit import delivery_event, is_delivery
    from fhir_server.security.audit import patient_of
    from fhir_server.validation import get_structure_validator

    validator = get_structure_validator()
    ok = delivery_event("notification", "k1", "Patient/p1", [("webhook", "cabinet.egov.kz")], 3)
    dead = delivery_event("notification", "k2", "Patient/p1", [("email", "smtp.local")], 1, delivered=False,
                          error="gave up after 10 attempts")
    for event in (ok, dead):
        assert not [i for i in validator.validate(event) if i.is_error]
        assert is_delivery(event) and patient_of(event) == "Patient/p1"
    assert dead["outcome"] == "8" and "10 attempts" in dead["outcomeDesc"]
