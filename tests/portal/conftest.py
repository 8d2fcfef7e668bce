"""The portal's test server: the authorization server with password and EDS sign-in (the project's test PKI),
the portal on, a patient with records and limits, another patient, a practitioner and an admin; and the
browser's part of signing in, driven with httpx (the Selenium tests drive a real Chromium: browser.py)."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.identity.issuer import IdentityConfig
from fhir_server.identity.registration import new_user
from fhir_server.identity.registry import Registry
from signing import init_pki, load_signer, sign_cms

LOCAL = "http://localhost"  # a loopback base: the portal's redirect URI may be plain http only there
PASSWORD = "correct horse battery"
MIS_BIN = "940140000385"
PATIENT_IIN = "123456789011"  # the test PKI's authentication certificate ("doctor-auth")
_HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')

VITALS = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}
PULSE = {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}], "text": "Pulse"}


def seed_resources() -> list[dict[str, Any]]:
    observations = [
        {"resourceType": "Observation", "id": f"o{i}", "status": "final", "category": [VITALS], "code": PULSE,
         "subject": {"reference": "Patient/p1"}, "effectiveDateTime": f"2026-11-0{i}T09:00:00+05:00",
         "valueQuantity": {"value": value, "unit": "/min"}} for i, value in ((1, 72), (2, 88), (3, 131), (4, 76))]
    return [
        {"resourceType": "Patient", "id": "p1", "name": [{"family": "Ахметова", "given": ["Айгерим"]}],
         "gender": "female", "identifier": [{"system": "https://fhir.kzfhir.kz/sid/iin", "value": PATIENT_IIN}]},
        {"resourceType": "Patient", "id": "p2", "name": [{"family": "Садыков"}], "gender": "male"},
        {"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "Иванов"}]},
        {"resourceType": "RelatedPerson", "id": "rp1", "active": True, "patient": {"reference": "Patient/p1"}},
        {"resourceType": "RelatedPerson", "id": "rp-mother", "active": True, "patient": {"reference": "Patient/p2"},
         "extension": [{"url": "https://fhir.kzfhir.kz/StructureDefinition/kz-representative-authority",
                        "extension": [{"url": "verified", "valueBoolean": True}]}]},
        {"resourceType": "Goal", "id": "g1", "lifecycleStatus": "active", "description": {"text": "pulse"},
         "subject": {"reference": "Patient/p1"}, "expressedBy": {"reference": "Practitioner/dr1"},
         "target": [{"measure": PULSE, "detailRange": {"low": {"value": 50, "unit": "/min"},
                                                       "high": {"value": 120, "unit": "/min"}}}]},
        *observations,
        {"resourceType": "Observation", "id": "o9", "status": "final", "code": PULSE,
         "subject": {"reference": "Patient/p2"}, "effectiveDateTime": "2026-11-01T09:00:00+05:00",
         "valueQuantity": {"value": 64, "unit": "/min"}},
        {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
         "code": {"text": "Essential hypertension (I10)"}, "recordedDate": "2026-10-01"},
        {"resourceType": "Encounter", "id": "e1", "status": "finished",
         "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
         "type": [{"text": "Cardiology visit"}], "subject": {"reference": "Patient/p1"},
         "period": {"start": "2026-10-01T10:00:00+05:00", "end": "2026-10-01T10:30:00+05:00"}},
        {"resourceType": "Schedule", "id": "s1", "active": True, "serviceType": [{"text": "Cardiology consultation"}],
         "actor": [{"reference": "Practitioner/dr1", "display": "Dr Ivanov"}]},
        *({"resourceType": "Slot", "id": f"sl{i}", "schedule": {"reference": "Schedule/s1"}, "status": "free",
           "serviceType": [{"text": "Cardiology consultation"}], "start": f"2030-01-1{i}T10:00:00+05:00",
           "end": f"2030-01-1{i}T10:30:00+05:00"} for i in (1, 2, 3)),
        {"resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order",
         "medicationCodeableConcept": {"text": "Amlodipine 5 mg"}, "subject": {"reference": "Patient/p1"},
         "authoredOn": "2026-10-01", "dosageInstruction": [{"text": "once a day"}]},
    ]


def register_people(registry: Registry) -> None:
    registry.add_user(new_user("aigerim", PASSWORD, "patient", "Patient/p1", None, iin=PATIENT_IIN))
    registry.add_user(new_user("bolat", PASSWORD, "patient", "Patient/p2", None))
    registry.add_user(new_user("dr.serik", PASSWORD, "practitioner", "Practitioner/dr1", MIS_BIN))
    registry.add_user(new_user("admin1", PASSWORD, "admin", "Practitioner/adm1", MIS_BIN))
    registry.add_user(new_user("mother", PASSWORD, "related-person", "RelatedPerson/rp-mother", None))


def portal_settings(tmp: Path, pki: Path, base: str = LOCAL, **extra: Any) -> Settings:
    return Settings(database=tmp / "portal.sqlite", synchronous_full=False, dev_key_path=tmp / "dev-jwks.json",
                    auth_server=True, base_url=base, auth_allow_http=True, auth_eds_signin=True,
                    auth_eds_trust_dir=pki / "trust", auth_eds_revocation_mode="hard", portal=True, **extra)


async def store(app: Any, resources: list[dict[str, Any]]) -> None:
    """Seed data (the test's set-up, not a page): written as the server's own import would."""
    from fhir_server.interactions.write import store_version

    services = app.state.services
    for resource in resources:
        await services.store.transaction(lambda view, r=resource: store_version(
            view, services, r, r["resourceType"], r["id"], 1, "PUT"))


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("portal-pki")
    init_pki(directory)
    return directory


@pytest.fixture
def settings(tmp_path: Path, pki: Path) -> Settings:
    return portal_settings(tmp_path, pki)


@pytest.fixture
async def web(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A browser without JavaScript: httpx against the app, redirects followed by hand."""
    register_people(Registry(IdentityConfig.from_settings(settings).database))
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=LOCAL, timeout=60
    ) as client:
        await store(app, seed_resources())
        client.app = app  # type: ignore[attr-defined]
        yield client


def hidden(page: str, name: str) -> str:
    values = [html.unescape(v) for k, v in _HIDDEN.findall(page) if k == name]
    assert values, f"no hidden {name} in the page"
    return values[0]


async def _approve(client: httpx.AsyncClient, response: httpx.Response) -> httpx.Response:
    """The authorization server's consent screen, the first time: every scope offered ticked."""
    if response.status_code != 200 or 'name="consent_ticket"' not in response.text:
        return response
    offered = re.findall(r'name="scope_ok" value="([^"]*)"', response.text)
    form = [("consent_ticket", hidden(response.text, "consent_ticket")),
            ("csrf_token", hidden(response.text, "csrf_token")), ("decision", "approve"),
            *(("scope_ok", html.unescape(s)) for s in offered)]
    return await client.post("/auth/authorize", content=urlencode(form),
                             headers={"Content-Type": "application/x-www-form-urlencoded"})


async def sign_in(client: httpx.AsyncClient, username: str = "aigerim", *, eds: Path | None = None) -> httpx.Response:
    """Start at the portal, sign in at /auth/authorize (password, or EDS with the PKI at ``eds``), come back
    through /portal/callback; the portal's answer to the callback."""
    start = await client.get("/portal/signin")
    assert start.status_code == 303, start.text
    page = await client.get(start.headers["location"])
    assert page.status_code == 200, page.text
    params = {k: v for k, v in httpx.URL(start.headers["location"]).params.items()}
    form = {**params, "csrf_token": hidden(page.text, "csrf_token")}
    if eds is None:
        form |= {"signin_method": "password", "username": username, "password": PASSWORD}
    else:
        challenge = hidden(page.text, "eds_challenge")
        signer = load_signer(eds / "doctor-auth.key.pem", eds / "doctor-auth.cert.pem")
        cms = await sign_cms(challenge.encode("utf-8"), signer)
        form |= {"signin_method": "eds", "eds_challenge": challenge,
                 "eds_cms": base64.b64encode(cms).decode("ascii")}
    answer = await _approve(client, await client.post("/auth/authorize", data=form))
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(f"{LOCAL}/portal/callback"), location
    return await client.get(location)


def csrf(page: httpx.Response) -> str:
    return hidden(page.text, "csrf_token")
