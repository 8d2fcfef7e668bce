"""Delivery channels for outbox messages (AC-18 notifications, later NEHP/payment submissions).

A channel raises on failure; the worker retries with backoff and dead-letters after the configured
number of attempts (architecture.md, core decision 7).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import smtplib
from email.message import EmailMessage
from typing import Any, Protocol

import httpx
import orjson


class DeliveryError(Exception):
    """The receiver did not accept the message; it will be retried."""


class Channel(Protocol):
    name: str

    async def deliver(self, topic: str, key: str, payload: dict[str, Any]) -> None: ...


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

    async def deliver(self, topic: str, key: str, payload: dict[str, Any]) -> None:
        body = orjson.dumps({"topic": topic, "key": key, "payload": payload})
        headers = {"content-type": "application/json", "idempotency-key": key, "x-kzfhir-topic": topic}
        if self.secret:
            headers["x-kzfhir-signature"] = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                r = await client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook {self.url}: {exc.__class__.__name__}: {exc}") from exc
        if r.status_code >= 300:
            raise DeliveryError(f"webhook {self.url} answered {r.status_code}")


class EmailChannel:
    """Sends a plain-text e-mail through an SMTP relay to the address the payload names."""

    name = "email"

    def __init__(self, host: str, port: int, sender: str, timeout: float = 10.0) -> None:
        self.host, self.port, self.sender, self.timeout = host, port, sender, timeout

    def _send(self, to: str, subject: str, text: str) -> None:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self.sender, to, subject
        msg.set_content(text)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            smtp.send_message(msg)

    async def deliver(self, topic: str, key: str, payload: dict[str, Any]) -> None:
        to = payload.get("email")
        if not to:
            return  # nobody to write to: the notification stays listed for the patient
        try:
            await asyncio.to_thread(self._send, str(to), str(payload.get("subject", topic)),
                                    str(payload.get("text", "")))
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"smtp {self.host}:{self.port}: {exc}") from exc
