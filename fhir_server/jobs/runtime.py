"""The outbox worker as the application runs it (AC-18), built from the settings.

Channels: a webhook when ``notify_webhook_url`` is set (signed with ``notify_webhook_secret``),
e-mail when ``smtp_host`` is set (to the patient's e-mail ``telecom``). Both patient topics go to
every channel: ``notification`` in per-patient digests every ``notify_digest_seconds`` (0: one by
one), ``notification-urgent`` (break-glass notices, AC-02) always at once. No channel, no worker:
notifications then stay listed in ``Patient/{id}/$notifications`` as not yet sent.

The application starts it in its lifespan::

    worker = build_worker(settings, services.store)   # after store.open(); worker.start()
    ...                                               # on shutdown: await worker.stop()
"""

from __future__ import annotations

from typing import Any

import orjson

from fhir_server.config import Settings
from fhir_server.jobs.channels import AddressLookup, Channel, EmailChannel, WebhookChannel
from fhir_server.jobs.messages import patient_of
from fhir_server.jobs.worker import OutboxWorker
from fhir_server.security.audit.read_notices import NOTIFY_TOPIC
from fhir_server.security.session import URGENT_TOPIC
from fhir_server.storage.protocols import Store

NEHP_TOPIC = "nehp"  # TM-11: records for the National Electronic Health Passport
PAYMENT_TOPIC = "payment"  # TM-19: claim lines for the payment system (GOBMP / OSMS)
EGOV_TOPIC = "egov-cabinet"  # AC-06: receipts to the e-government cabinet (telemed/egov_cabinet.py TOPIC)


def patient_email(store: Store) -> AddressLookup:
    """The first current e-mail ``telecom`` of the patient a message is about."""

    async def lookup(payload: dict[str, Any]) -> str | None:
        patient = patient_of(payload)
        if patient is None:
            return None
        stored = await store.read("Patient", patient.split("/", 1)[1])
        if stored is None or stored.deleted or stored.data is None:
            return None
        for telecom in orjson.loads(stored.data).get("telecom", []) or []:
            ended = (telecom.get("period") or {}).get("end")
            if telecom.get("system") == "email" and telecom.get("value") and not ended:
                return str(telecom["value"])
        return None

    return lookup


def build_channels(settings: Settings, store: Store) -> list[Channel]:
    channels: list[Channel] = []
    if settings.notify_webhook_url:
        channels.append(WebhookChannel(settings.notify_webhook_url, settings.notify_webhook_secret))
    if settings.smtp_host:
        channels.append(EmailChannel(settings.smtp_host, settings.smtp_port, settings.smtp_sender,
                                     address_of=patient_email(store)))
    return channels


def build_worker(settings: Settings, store: Store, *, services: Any = None, **options: Any) -> OutboxWorker | None:
    """The worker for the patient topics and the national systems (NEHP, payment), or None when no
    channel is configured. ``options`` go to :class:`OutboxWorker` (``base_backoff``, ``poll_seconds``,
    ``max_attempts``, ``clock``). A topic without a channel keeps its messages queued. With ``services``
    (the application's) the NEHP's acknowledged ids are written back and, with ``nehp_auto_submit``, finished
    remote services are built into records (jobs/nehp_delivery.py)."""
    from fhir_server.jobs.nehp_delivery import BUILD_TOPIC, AcknowledgedChannel, RecordBuilder, write_back

    topics: dict[str, list[Channel]] = {}
    channels = build_channels(settings, store)
    if channels:
        topics[NOTIFY_TOPIC] = channels
        topics[URGENT_TOPIC] = channels
    if settings.nehp_url:
        topics[NEHP_TOPIC] = [AcknowledgedChannel(settings.nehp_url, settings.nehp_secret,
                                                  on_ack=write_back(services) if services is not None else None)]
    if settings.payment_url:
        topics[PAYMENT_TOPIC] = [AcknowledgedChannel(settings.payment_url, settings.payment_secret)]
    if settings.egov_cabinet_url:  # receipts of consents given in the e-government cabinet (AC-06)
        secret = settings.egov_cabinet_secret.get_secret_value() if settings.egov_cabinet_secret else None
        topics[EGOV_TOPIC] = [WebhookChannel(settings.egov_cabinet_url, secret)]
    if settings.nehp_auto_submit and services is not None:
        topics[BUILD_TOPIC] = [RecordBuilder(services)]
    if not topics:
        return None
    return OutboxWorker(store, topics, digest_seconds=settings.notify_digest_seconds,
                        digest_topics=frozenset({NOTIFY_TOPIC}), **options)
