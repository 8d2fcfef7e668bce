"""A secured server (security ON) over a database seeded in open mode, for the consultation and booking
tests: patient p1 with a consultation (Appointment a1, virtual Encounter e1) with doctor dr1; doctor dr2
may see p1's data under the same Consent but takes no part; patient p2 is someone else."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.security.auth import issue_dev_token
from tests.conftest import BASE, test_database
from tests.orders.doubles import VideoService
from tests.pg import release_database

FHIR_JSON = {"content-type": "application/fhir+json"}
KZ = "https://fhir.kzfhir.kz"
VR = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR"}
CHANNEL = {"url": f"{KZ}/StructureDefinition/kz-telecom-channel",
           "valueCoding": {"system": f"{KZ}/CodeSystem/kz-telecom-channel", "code": "video"}}


def consent_for(patient: str, *actors: str, cid: str) -> dict[str, Any]:
    return {"resourceType": "Consent", "id": cid, "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                  "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": patient},
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                       "code": "OPTIN"}]},
            "provision": {"provision": [{"type": "permit", "actor": [
                {"role": {"coding": [{"code": "PRCP"}]}, "reference": {"reference": a}} for a in actors]}]}}


SEED: list[dict[str, Any]] = [
    {"resourceType": "Patient", "id": "p1", "name": [{"family": "Ахметов"}]},
    {"resourceType": "Patient", "id": "p2", "name": [{"family": "Садыкова"}]},
    {"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "Иванов"}]},
    {"resourceType": "Practitioner", "id": "dr2", "name": [{"family": "Петров"}]},
    {"resourceType": "Organization", "id": "org1", "name": "Поликлиника 7",
     "identifier": [{"system": f"{KZ}/sid/bin", "value": "940140000385"}]},
    consent_for("Patient/p1", "Practitioner/dr1", "Practitioner/dr2", cid="c1"),
    consent_for("Patient/p2", "Practitioner/dr2", cid="c2"),
    {"resourceType": "Appointment", "id": "a1", "status": "booked", "extension": [CHANNEL],
     "start": "2026-01-20T10:00:00+05:00", "end": "2026-01-20T10:20:00+05:00",
     "participant": [{"actor": {"reference": "Patient/p1"}, "status": "accepted"},
                     {"actor": {"reference": "Practitioner/dr1"}, "status": "accepted"}]},
    {"resourceType": "Encounter", "id": "e1", "status": "planned", "class": VR,
     "subject": {"reference": "Patient/p1"}, "appointment": [{"reference": "Appointment/a1"}],
     "participant": [{"individual": {"reference": "Practitioner/dr1"}}]},
]


@dataclass
class World:
    client: httpx.AsyncClient
    app: Any
    settings: Settings

    @property
    def store(self) -> Any:
        return self.app.state.services.store

    def auth(self, role: str, user: str | None = None, **kwargs: Any) -> dict[str, str]:
        token = issue_dev_token(role, user, key_path=self.settings.dev_key_path, **kwargs)
        return {"Authorization": f"Bearer {token}", **FHIR_JSON}

    def as_(self, user: str) -> dict[str, str]:
        role = {"Patient": "patient", "Practitioner": "practitioner", "RelatedPerson": "related-person"}
        return self.auth(role[user.split("/")[0]], user)

    async def op(self, path: str, user: str) -> httpx.Response:
        return await self.client.post(path, headers=self.as_(user), json={"resourceType": "Parameters"})


async def seed(settings: Settings, resources: list[dict[str, Any]]) -> None:
    app = create_app(settings.model_copy(update={"security_enabled": False, "remote_booking_consent": False}))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE
    ) as c:
        for res in resources:
            r = await c.put(f"/{res['resourceType']}/{res['id']}", json=res, headers=FHIR_JSON)
            assert r.status_code in (200, 201), r.text


OpenWorld = Callable[..., AbstractAsyncContextManager[World]]


@pytest.fixture
def open_world(tmp_path: Path) -> Iterator[OpenWorld]:
    """``async with open_world(extra_seed, **settings) as world``: seeded, then served with security on."""

    @asynccontextmanager
    async def run(extra: list[dict[str, Any]] | None = None, **overrides: Any) -> AsyncIterator[World]:
        database = databases.setdefault("db", test_database(tmp_path, "db.sqlite"))  # one per test, reopened
        settings = Settings(database=database, dev_key_path=tmp_path / "jwks.json", synchronous_full=False,
                            **overrides)
        await seed(settings, [*SEED, *(extra or [])])
        app = create_app(settings)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE, timeout=30
        ) as client:
            yield World(client, app, settings)

    databases: dict[str, Path | str] = {}
    yield run
    for database in databases.values():
        release_database(database)



@pytest.fixture
async def video() -> AsyncIterator[VideoService]:
    service = VideoService()
    yield service
    await service.stop()
