"""A secured server (real HTTP through the ASGI transport) over a seeded database, tokens for every role,
the subscription delivery worker polling fast, and a local HTTP receiver for rest-hook notifications."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.security.auth import issue_dev_token
from fhir_server.subscriptions.service import Subscriptions, installed
from fhir_server.subscriptions.spec import FILTER_CRITERIA, HEARTBEAT_PERIOD, PAYLOAD_CONTENT
from fhir_server.subscriptions.topics import APPOINTMENT
from tests.conftest import BASE
from tests.patient_ops.receivers import Received, WebhookReceiver

FHIR_JSON = {"content-type": "application/fhir+json"}
BIN = "940140000385"
CONSENT_SCOPE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                             "code": "patient-privacy"}]}


def consent(cid: str, patient: str, actor: str, status: str = "active") -> dict[str, Any]:
    """The patient permits ``actor`` everything (for treatment)."""
    return {"resourceType": "Consent", "id": cid, "status": status, "scope": CONSENT_SCOPE,
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": f"Patient/{patient}"},
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                       "code": "OPTIN"}]},
            "provision": {"provision": [{"type": "permit", "actor": [
                {"role": {"coding": [{"code": "PRCP"}]}, "reference": {"reference": actor}}]}]}}


SEED: list[dict[str, Any]] = [
    {"resourceType": "Patient", "id": "p1", "name": [{"family": "Ахметов"}]},
    {"resourceType": "Patient", "id": "p2", "name": [{"family": "Садыкова"}]},
    {"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "Иванов"}]},
    {"resourceType": "Practitioner", "id": "dr2", "name": [{"family": "Петров"}]},
    consent("c1", "p1", "Practitioner/dr1"),
    {"resourceType": "Goal", "id": "g1", "lifecycleStatus": "active", "description": {"text": "heart rate"},
     "subject": {"reference": "Patient/p1"}, "expressedBy": {"reference": "Practitioner/dr1"},
     "target": [{"measure": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                 "detailRange": {"low": {"value": 50}, "high": {"value": 120}}}]},
]


def reading(value: float, patient: str = "p1") -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "Heart rate"},
            "subject": {"reference": f"Patient/{patient}"}, "effectiveDateTime": "2026-12-01T08:00:00+05:00",
            "valueQuantity": {"value": value, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}}


def appointment(aid: str | None = None, patient: str = "p1", status: str = "booked",
                start: str = "2026-12-10T09:00:00+05:00") -> dict[str, Any]:
    return {"resourceType": "Appointment", **({"id": aid} if aid else {}), "status": status, "start": start,
            "end": start.replace("09:00", "09:30"), "description": "therapist",
            "participant": [{"actor": {"reference": f"Patient/{patient}"}, "status": "accepted"},
                            {"actor": {"reference": "Practitioner/dr1"}, "status": "accepted"}]}


def subscription(endpoint: str, *, topic: str = APPOINTMENT,
                 filters: tuple[str, ...] = ("Appointment?patient=Patient/p1",),
                 content: str = "full-resource", channel: str = "rest-hook", heartbeat: int | None = None,
                 **extra: Any) -> dict[str, Any]:
    chan: dict[str, Any] = {"type": channel, "endpoint": endpoint, "payload": "application/fhir+json",
                            "_payload": {"extension": [{"url": PAYLOAD_CONTENT, "valueCode": content}]},
                            "header": ["X-Client: test"]}
    if heartbeat is not None:
        chan["extension"] = [{"url": HEARTBEAT_PERIOD, "valueUnsignedInt": heartbeat}]
    body: dict[str, Any] = {"resourceType": "Subscription", "status": "requested", "reason": "test",
                            "criteria": topic, "channel": chan, **extra}
    if filters:
        body["_criteria"] = {"extension": [{"url": FILTER_CRITERIA, "valueString": f} for f in filters]}
    return body


@dataclass
class World:
    client: httpx.AsyncClient
    app: Any
    settings: Settings
    receiver: WebhookReceiver
    endpoint: str

    @property
    def store(self) -> Any:
        return self.app.state.services.store

    @property
    def subscriptions(self) -> Subscriptions:
        found = installed(self.app.state.services)
        assert found is not None
        return found

    def auth(self, role: str, user: str | None = None, **kwargs: Any) -> dict[str, str]:
        token = issue_dev_token(role, user, key_path=self.settings.dev_key_path, **kwargs)
        return {"Authorization": f"Bearer {token}", **FHIR_JSON}

    async def subscribe(self, who: dict[str, str], body: dict[str, Any], *, active: bool = True) -> str:
        r = await self.client.post("/Subscription", json=body, headers=who)
        assert r.status_code == 201, r.text
        sid = str(r.json()["id"])
        if active:
            await self.until(lambda: self.status_of(sid, who), "active")
        return sid

    async def status_of(self, sid: str, who: dict[str, str]) -> str:
        r = await self.client.get(f"/Subscription/{sid}", headers=who)
        assert r.status_code == 200, r.text
        return str(r.json()["status"])

    async def until(self, probe: Callable[[], Awaitable[Any]], expected: Any, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while (got := await probe()) != expected:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {expected!r}, still {got!r}")
            await asyncio.sleep(0.02)

    async def notifications(self, count: int, kind: str = "event-notification", timeout: float = 10.0
                            ) -> list[dict[str, Any]]:
        """Wait for ``count`` accepted notifications of a type; return them all (oldest first)."""
        deadline = time.monotonic() + timeout
        while len(found := self.of_kind(kind)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)} {kind} notifications arrived, expected {count}")
            await asyncio.sleep(0.02)
        return found

    async def write(self, who: dict[str, str], resource: dict[str, Any]) -> dict[str, Any]:
        """POST (no id) or PUT (with id) a resource; the stored version."""
        if "id" in resource:
            r = await self.client.put(f"/{resource['resourceType']}/{resource['id']}", json=resource, headers=who)
        else:
            r = await self.client.post(f"/{resource['resourceType']}", json=resource, headers=who)
        assert r.status_code in (200, 201), r.text
        data: dict[str, Any] = r.json()
        return data

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [b for b in (bundle_of(r) for r in self.receiver.accepted) if status_type(b) == kind]


def bundle_of(received: Received) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(received.body)
    return data


def params(bundle: dict[str, Any]) -> dict[str, Any]:
    """The SubscriptionStatus parameters by name (``notification-event`` as a list of dicts of parts)."""
    out: dict[str, Any] = {}
    for p in bundle["entry"][0]["resource"]["parameter"]:
        if p["name"] == "notification-event":
            parts: dict[str, Any] = {}
            for part in p["part"]:
                value = next(v for k, v in part.items() if k.startswith("value"))
                parts.setdefault(part["name"], []).append(value)
            out.setdefault("notification-event", []).append(parts)
        else:
            out[p["name"]] = next(v for k, v in p.items() if k.startswith("value"))
    return out


def status_type(bundle: dict[str, Any]) -> str:
    return str(params(bundle)["type"])


async def _seed(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"security_enabled": False}))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE
    ) as c:
        for res in SEED:
            r = await c.put(f"/{res['resourceType']}/{res['id']}", json=res, headers=FHIR_JSON)
            assert r.status_code in (200, 201), r.text


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    settings = Settings(database=tmp_path / "db.sqlite", dev_key_path=tmp_path / "jwks.json", synchronous_full=False)
    await _seed(settings)
    receiver = WebhookReceiver()
    endpoint = await receiver.start()
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE, timeout=30
        ) as client:
            w = World(client, app, settings, receiver, endpoint)
            await w.subscriptions.start_worker(poll_seconds=0.02, base_backoff=0.05, max_attempts=3)
            yield w
    finally:
        await receiver.stop()


@dataclass
class LiveWorld(World):
    """The same world served by a real uvicorn server on a loopback port (websocket clients need one)."""

    url: str = ""


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[LiveWorld]:
    import uvicorn

    from tests.live_server import free_port

    settings = Settings(database=tmp_path / "db.sqlite", dev_key_path=tmp_path / "jwks.json", synchronous_full=False)
    await _seed(settings)
    receiver = WebhookReceiver()
    endpoint = await receiver.start()
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                           ws="websockets-sansio"))
    task = asyncio.create_task(server.serve())
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if task.done() or time.monotonic() > deadline:
                raise RuntimeError("the live server did not start")
            await asyncio.sleep(0.02)
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            w = LiveWorld(client, app, settings, receiver, endpoint, url)
            await w.subscriptions.start_worker(poll_seconds=0.02, base_backoff=0.05, max_attempts=40)
            w.subscriptions.heartbeat_tick = 0.2
            yield w
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
        await receiver.stop()
