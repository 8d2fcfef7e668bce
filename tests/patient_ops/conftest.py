"""A secured server (security ON, real HTTP through the ASGI transport) over a database seeded in
open mode, tokens for every role, and an outbox worker the test controls."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.jobs.runtime import build_worker
from fhir_server.jobs.worker import OutboxWorker
from fhir_server.security.auth import issue_dev_token
from fhir_server.security.policy import AccessPolicy
from fhir_server.security.policy.rules import PolicySettings
from fhir_server.storage.protocols import OutboxItem
from tests.conftest import BASE
from tests.patient_ops.receivers import WebhookReceiver

FHIR_JSON = {"content-type": "application/fhir+json"}
BIN = "940140000385"
SECRET = "s3cret-shared-with-the-cabinet"
MIS = "urn:kz:mis:polyclinic-7"

SEED: list[dict[str, Any]] = [
    {"resourceType": "Patient", "id": "p1", "name": [{"family": "Ахметов"}],
     "telecom": [{"system": "email", "value": "p1@example.kz"}]},
    {"resourceType": "Patient", "id": "p2", "name": [{"family": "Садыкова"}]},
    {"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "Иванов"}]},
    {"resourceType": "Practitioner", "id": "dr2", "name": [{"family": "Петров"}]},
    {"resourceType": "Observation", "id": "o1", "meta": {"source": MIS}, "status": "final",
     "code": {"text": "pulse"}, "subject": {"reference": "Patient/p1"},
     "effectiveDateTime": "2025-05-01T10:00:00+05:00"},
    {"resourceType": "Observation", "id": "o2", "status": "final", "code": {"text": "pulse"},
     "subject": {"reference": "Patient/p2"}},
    {"resourceType": "RelatedPerson", "id": "rp1", "active": True, "patient": {"reference": "Patient/p1"},
     "extension": [{"url": "https://fhir.kzfhir.kz/StructureDefinition/kz-representative-authority",
                    "extension": [{"url": "verified", "valueBoolean": True}]}]},
    {"resourceType": "Consent", "id": "c1", "status": "active",
     "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                           "code": "patient-privacy"}]},
     "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
     "patient": {"reference": "Patient/p1"},
     "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                "code": "OPTIN"}]},
     "provision": {"provision": [{
         "type": "permit",
         "actor": [{"role": {"coding": [{"code": "PRCP"}]}, "reference": {"reference": "Practitioner/dr1"}}],
         "class": [{"system": "http://hl7.org/fhir/resource-types", "code": "Observation"}],
         "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}]}]}},
]


#: The operations of this area by name, as the route-level gate (api/routes/operations.py) passes them
#: to the policy. The shipped PolicySettings must list them too (test_policy_names.py says whether it does);
#: the server in these tests is given them so the operations themselves are proven either way.
OVERSIGHT_OPERATIONS = frozenset({"access-log", "notifications"})
ADMIN_OPERATIONS = OVERSIGHT_OPERATIONS | {"audit-verify", "data-subject-request", "data-report",
                                           "dsr-answer", "dsr-overdue"}


def _with_patient_operations(app: Any) -> None:
    enforcer = app.state.services.enforcer
    shipped = enforcer.policy.settings
    settings = PolicySettings(
        patient_writable=shipped.patient_writable,
        oversight_operations=shipped.oversight_operations | OVERSIGHT_OPERATIONS,
        admin_operations=shipped.admin_operations | ADMIN_OPERATIONS,
        dsr_task_system=shipped.dsr_task_system,
    )
    enforcer.policy = AccessPolicy(settings)


@dataclass
class World:
    client: httpx.AsyncClient
    app: Any
    settings: Settings

    @property
    def store(self) -> Any:
        return self.app.state.services.store

    @property
    def validator(self) -> Any:
        return self.app.state.services.validator

    def auth(self, role: str, user: str | None = None, **kwargs: Any) -> dict[str, str]:
        token = issue_dev_token(role, user, key_path=self.settings.dev_key_path, **kwargs)
        return {"Authorization": f"Bearer {token}"}

    async def get(self, path: str, headers: dict[str, str], **params: Any) -> httpx.Response:
        return await self.client.get(path, headers=headers, params=params)

    async def post(self, path: str, headers: dict[str, str], parameters: list[dict[str, Any]]
                   ) -> httpx.Response:
        body = {"resourceType": "Parameters", "parameter": parameters}
        return await self.client.post(path, headers={**headers, **FHIR_JSON}, json=body)


async def _seed(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"security_enabled": False}))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE
    ) as c:
        for res in SEED:
            r = await c.put(f"/{res['resourceType']}/{res['id']}", json=res, headers=FHIR_JSON)
            assert r.status_code in (200, 201), r.text


OpenWorld = Callable[..., AbstractAsyncContextManager[World]]


@pytest.fixture
def open_world(tmp_path: Path) -> OpenWorld:
    """``async with open_world(**settings) as world``: seeded, then served with security on."""

    @asynccontextmanager
    async def run(**overrides: Any) -> AsyncIterator[World]:
        settings = Settings(database=tmp_path / "db.sqlite", dev_key_path=tmp_path / "jwks.json",
                            synchronous_full=False, **overrides)
        await _seed(settings)
        app = create_app(settings)
        _with_patient_operations(app)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE, timeout=30
        ) as client:
            yield World(client, app, settings)

    return run


@pytest.fixture
async def world(open_world: OpenWorld) -> AsyncIterator[World]:
    async with open_world() as w:
        yield w


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    r = WebhookReceiver()
    yield r
    await r.stop()


@asynccontextmanager
async def running_worker(world: World, **options: Any) -> AsyncIterator[OutboxWorker]:
    """The outbox worker for this app, fast-polling; replaces one the app may have started itself."""
    existing = getattr(world.app.state, "outbox_worker", None)
    if existing is not None:
        await existing.stop()
    options = {"poll_seconds": 0.02, "base_backoff": 0.05, **options}
    worker = build_worker(world.settings, world.store, **options)
    assert worker is not None, "no channel configured"
    worker.start()
    try:
        yield worker
    finally:
        await worker.stop()


async def outbox_of(world: World, patient: str = "Patient/p1") -> list[OutboxItem]:
    items: list[OutboxItem] = []
    for topic in ("notification", "notification-urgent"):
        items += await world.store.outbox_partition(topic, patient, 1000)
    return items


async def outbox_settles(world: World, done: Callable[[list[OutboxItem]], bool],
                         timeout: float = 10.0) -> None:
    """Wait until the worker has recorded the outcome the test expects (before stopping it)."""
    deadline = time.monotonic() + timeout
    while not done(await outbox_of(world)):
        if time.monotonic() > deadline:
            raise AssertionError(f"outbox did not settle: {await outbox_of(world)}")
        await asyncio.sleep(0.02)
