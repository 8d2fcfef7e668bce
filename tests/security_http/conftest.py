"""A secured server over a database seeded in open mode, and tokens for every role."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.security.auth import issue_dev_token
from tests.conftest import BASE, test_database
from tests.pg import release_database

FHIR_JSON = {"content-type": "application/fhir+json"}
BIN = "940140000385"
ORG_ACTOR = {"identifier": {"system": "https://fhir.kzfhir.kz/sid/bin", "value": BIN}}

SEED: list[dict[str, Any]] = [
    {"resourceType": "Patient", "id": "p1", "name": [{"family": "Ахметов"}], "gender": "male"},
    {"resourceType": "Patient", "id": "p2", "name": [{"family": "Садыкова"}], "gender": "female"},
    {"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "Иванов"}]},
    {"resourceType": "Practitioner", "id": "dr2", "name": [{"family": "Петров"}]},
    {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "pulse"},
     "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2025-05-01T10:00:00+05:00",
     "valueQuantity": {"value": 72, "unit": "/min"}},
    {"resourceType": "Observation", "id": "o2", "status": "final", "code": {"text": "pulse"},
     "subject": {"reference": "Patient/p2"}, "effectiveDateTime": "2025-05-01T10:00:00+05:00"},
    {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"}, "code": {"text": "I10"},
     "recordedDate": "2025-05-01"},
    {"resourceType": "RelatedPerson", "id": "rp1", "active": True, "patient": {"reference": "Patient/p1"},
     "extension": [{"url": "https://fhir.kzfhir.kz/StructureDefinition/kz-representative-authority",
                    "extension": [{"url": "verified", "valueBoolean": True}]}]},
    {"resourceType": "RelatedPerson", "id": "rp2", "active": True, "patient": {"reference": "Patient/p1"}},
    # authority recorded the KZ IG way: the document and the employee who verified it (AC-09)
    {"resourceType": "RelatedPerson", "id": "rp3", "active": True, "patient": {"reference": "Patient/p1"},
     "extension": [{"url": "https://fhir.kzfhir.kz/StructureDefinition/kz-representative-authority",
                    "extension": [{"url": "document", "valueString": "power of attorney 77-1/2025"},
                                  {"url": "verifiedBy", "valueReference": {"reference": "Practitioner/dr1"}}]}]},
]


def consent(cid: str, actor: dict[str, Any], *, status: str = "active", classes: tuple[str, ...] = (),
            actions: tuple[str, ...] = ("access",), kind: str = "permit") -> dict[str, Any]:
    provision: dict[str, Any] = {
        "type": kind,
        "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                         "code": "PRCP"}]}, "reference": actor}],
        "action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": a}]}
                   for a in actions],
    }
    if classes:
        provision["class"] = [{"system": "http://hl7.org/fhir/resource-types", "code": c} for c in classes]
    return {
        "resourceType": "Consent", "id": cid, "status": status,
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/p1"}, "dateTime": "2025-01-01",
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
        "provision": {"provision": [provision]},
    }


async def _seed(settings: Settings, resources: list[dict[str, Any]]) -> None:
    app = create_app(settings.model_copy(update={"security_enabled": False}))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE
    ) as c:
        for res in resources:
            r = await c.put(f"/{res['resourceType']}/{res['id']}", json=res, headers=FHIR_JSON)
            assert r.status_code in (200, 201), r.text


@pytest.fixture
def secure_settings(tmp_path: Path) -> Iterator[Settings]:
    database = test_database(tmp_path, "sec.sqlite")
    yield Settings(database=database, dev_key_path=tmp_path / "jwks.json", synchronous_full=False)
    release_database(database)


@pytest.fixture
def seed(secure_settings: Settings) -> Callable[..., Any]:
    async def run(extra: list[dict[str, Any]] = ()) -> None:  # type: ignore[assignment]
        await _seed(secure_settings, [*SEED, *extra])

    return run


@pytest.fixture
async def server(secure_settings: Settings, seed: Callable[..., Any]) -> AsyncIterator[httpx.AsyncClient]:
    await seed([consent("cons1", {"reference": "Practitioner/dr1"}, classes=("Observation",)),
                consent("cons-org", ORG_ACTOR, classes=("Observation", "Condition"))])
    app = create_app(secure_settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE
    ) as c:
        c.app = app  # type: ignore[attr-defined]
        yield c


@pytest.fixture
def token(secure_settings: Settings) -> Callable[..., dict[str, str]]:
    def make(role: str, fhir_user: str | None = None, **kwargs: Any) -> dict[str, str]:
        t = issue_dev_token(role, fhir_user, key_path=secure_settings.dev_key_path, **kwargs)
        return {"Authorization": f"Bearer {t}"}

    return make
