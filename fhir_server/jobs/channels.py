"""Delivery channels for outbox messages (AC-18 notifications, later NEHP/payment submissions).

A channel raises on failure; the worker retries with backoff and dead-letters after the configured
number of attempts (architecture.md, core decision 7).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import smtplib
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import orjson

from fhir_server.jobs.messages import email_message

#: Finds the e-mail address for a payload (the patient's ``telecom``), or None.
AddressLookup = Callable[[dict[str, Any]], Awaitable[str | None]]


class DeliveryError(Exception):
    """The receiver did not accept the message; it will be retried."""


class RejectedError(DeliveryError):
    """The receiver refused the message for good (e.g. the NEHP's ``rejected`` acknowledgement): retrying the
    same bytes cannot help, so the worker gives it up at once and it shows as not delivered ($deliveries)."""


class Channel(Protocol):
    name: str

    async def deliver(self, topic: str, key: str, payload: dict[str, Any]) -> str | None:
        """Hand the message over; return the receiver's acknowledgement id, if it gives one."""
        ...


class WebhookChannel:
    """POSTs JSON to a URL (e.g. an adapter towards the e-government personal cabinet).

    The body is signed with HMAC-SHA256 of a shared secret in ``X-Kzfhir-Signature`` so the receiver
    can tell it came from this server; ``Idempotency-Key`` lets it drop redeliveries.
    """

    name = "webhook"

    def __init__(self, url: str, secret: str | None = None, timeout: float = 10.0) -> None:
        self.url = url
        self.secret = secret.encode() if secret else None
        self.timeout = timeout
        # Audited as the recipient (TM-13): the host only, a URL may carry credentials.
        self.endpoint = urlsplit(url).hostname or "webhook"

    async def deliver(self, topic: str, key: str, payload: dict[str, Any]) -> str | None:
        r = await self.post(topic, key, payload)
        if r.status_code >= 300:
            raise DeliveryError(f"webhook {self.url} answered {r.status_code}")
        return None

    async def post(self, topic: str, key: str, payload: dict[str, Any]) -> httpx.Response:
        body = orjson.dumps({"topic": topic, "key": key, "payload": payload})
        headers = {"content-type": "application/json", "idempotency-key": key, "x-kzfhir-topic": topic}
        if self.secret:
            digest = hmac.new(self.secret, body, hashlib.sha256).hexdigest()
            headers["x-kzfhir-signature"] = f"sha256={digest}"
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                r = await client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook {self.url}: {exc.__class__.__name__}: {exc}") from exc
        return r


class EmailChannel:
    """Sends a plain-text e-mail (English and Russian, jobs/messages.py) through an SMTP relay.

    The address is the payload's ``email`` if it names one, else what ``address_of`` finds (the
    patient's e-mail ``telecom``). Without an address there is nobody to write to: the message
    counts as handled and stays listed in ``$notifications``.
    """

    name = "email"

    def __init__(self, host: str, port: int, sender: str, timeout: float = 10.0, *,
                 address_of: AddressLookup | None = None) -> None:
        self.host, self.port, self.sender, self.timeout = host, port, sender, timeout
        self.address_of = address_of
        self.endpoint = host

    def _send(self, to: str, subject: str, text: str) -> None:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self.sender, to, subject
        msg.set_content(text)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            smtp.send_message(msg)

    async def deliver(self, topic: str, key: str, payload: dict[str, Any]) -> str | None:
        to = payload.get("email")
        if not to and self.address_of is not None:
            to = await self.address_of(payload)
        if not to:
            return None
        subject, text = email_message(topic, payload)
        try:
            await asyncio.to_thread(self._send, str(to), subject, text)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"smtp {self.host}:{self.port}: {exc}") from exc
        return None
