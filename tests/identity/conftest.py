"""A test server with the built-in authorization server on (KZFHIR_AUTH_SERVER), its registry, a registered
patient and practitioner, a public SMART app, a backend service with its own key, and the browser side of
the authorization-code flow (httpx following the sign-in form and the redirect by hand)."""

from __future__ import annotations

import html
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.identity.issuer import IdentityConfig
from fhir_server.identity.registration import new_client, new_user
from fhir_server.identity.registry import Registry
from tests.conftest import BASE

APP = "smart-app"
REDIRECT = "https://app.example.kz/callback"
BACKEND = "mis-backend"
MIS_BIN = "940140000385"
PASSWORD = "correct horse battery"
TOKEN_URL = f"{BASE}/auth/token"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database=tmp_path / "test.sqlite", synchronous_full=False, dev_key_path=tmp_path / "dev-jwks.json",
                    auth_server=True, base_url=BASE, auth_allow_http=True)


@pytest.fixture
def registry(settings: Settings) -> Registry:
    return Registry(IdentityConfig.from_settings(settings).database)


@dataclass
class Backend:
    key: Any
    alg: str

    def assertion(self, *, client_id: str = BACKEND, aud: str = TOKEN_URL, exp_in: int = 240,
                  jti: str | None = None, key: Any = None, now: int | None = None) -> str:
        issued = int(time.time()) if now is None else now
        signer = key or self.key
        claims = {"iss": client_id, "sub": client_id, "aud": aud, "exp": issued + exp_in, "iat": issued,
                  "jti": jti or uuid.uuid4().hex}
        return jwt.encode({"alg": self.alg, "kid": signer.kid, "typ": "JWT"}, claims, signer, algorithms=[self.alg])

    def form(self, scope: str = "system/Observation.rs", **kwargs: Any) -> dict[str, str]:
        return {"grant_type": "client_credentials", "scope": scope,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": self.assertion(**kwargs)}


def _key(alg: str) -> Any:
    key = RSAKey.generate_key(2048, private=True) if alg == "RS384" else ECKey.generate_key("P-384", private=True)
    key.ensure_kid()
    return key


@pytest.fixture(params=["RS384", "ES384"])
def backend(request: pytest.FixtureRequest, registry: Registry) -> Backend:
    alg = request.param
    key = _key(alg)
    registry.add_client(new_client(BACKEND, "Clinic MIS", jwks={"keys": [key.as_dict(private=False)]},
                                   bin=MIS_BIN, scopes=["system/*.rs"]))
    return Backend(key, alg)


@pytest.fixture
def people(registry: Registry) -> None:
    registry.add_user(new_user("aigerim", PASSWORD, "patient", "Patient/p1", None))
    registry.add_user(new_user("dr.serik", PASSWORD, "practitioner", "Practitioner/dr1", MIS_BIN))
    registry.add_client(new_client(APP, "Patient app", redirect_uris=[REDIRECT],
                                   scopes=["openid", "fhirUser", "launch", "launch/patient", "offline_access",
                                           "patient/*.rs", "user/*.rs"]))


async def _store(app: Any, resource: dict[str, Any]) -> None:
    from fhir_server.interactions.write import store_version

    services = app.state.services
    await services.store.transaction(lambda view: store_version(
        view, services, resource, resource["resourceType"], resource["id"], 1, "PUT"))


VITALS = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}


@pytest.fixture
async def server(settings: Settings, people: None) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE, timeout=60
    ) as c:
        for resource in (
            {"resourceType": "Patient", "id": "p1", "name": [{"family": "Ахметова"}], "gender": "female"},
            {"resourceType": "Patient", "id": "p2", "name": [{"family": "Другой"}], "gender": "male"},
            {"resourceType": "Observation", "id": "o1", "status": "final", "category": [VITALS],
             "code": {"text": "heart rate"}, "subject": {"reference": "Patient/p1"}},
            {"resourceType": "Observation", "id": "o2", "status": "final", "code": {"text": "heart rate"},
             "subject": {"reference": "Patient/p2"}},
        ):
            await _store(app, resource)
        c.app = app  # type: ignore[attr-defined]
        yield c


@dataclass
class Pkce:
    verifier: str
    challenge: str


@pytest.fixture
def pkce() -> Pkce:
    verifier = secrets.token_urlsafe(48)
    return Pkce(verifier, create_s256_code_challenge(verifier))


def authorize_params(pkce: Pkce, **overrides: str) -> dict[str, str]:
    params = {"response_type": "code", "client_id": APP, "redirect_uri": REDIRECT, "aud": BASE,
              "scope": "openid fhirUser launch/patient offline_access patient/*.rs", "state": secrets.token_hex(8),
              "code_challenge": pkce.challenge, "code_challenge_method": "S256"}
    params.update(overrides)
    return {k: v for k, v in params.items() if v != ""}


def redirect_query(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


SignIn = Callable[..., Any]
_HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


def hidden(page: str, name: str) -> str:
    """A hidden field of a server-rendered page (the CSRF token, the consent ticket)."""
    values = [html.unescape(v) for k, v in _HIDDEN.findall(page) if k == name]
    assert values, f"no hidden {name} in the page"
    return values[0]


async def sign_in_form(client: httpx.AsyncClient, params: dict[str, str]) -> dict[str, str]:
    """The browser opens the sign-in page (which sets its CSRF cookie) and fills in the request and token."""
    page = await client.get("/auth/authorize", params=params)
    assert page.status_code == 200, page.text
    return {**params, "csrf_token": hidden(page.text, "csrf_token")}


async def approve(client: httpx.AsyncClient, response: httpx.Response, keep: list[str] | None = None,
                  decision: str = "approve") -> httpx.Response:
    """Answer the consent screen if it is shown: every optional scope ticked, or only ``keep``."""
    if response.status_code != 200 or 'name="consent_ticket"' not in response.text:
        return response
    offered = re.findall(r'name="scope_ok" value="([^"]*)"', response.text)
    ticked = [html.unescape(s) for s in offered if keep is None or html.unescape(s) in keep]
    form = [("consent_ticket", hidden(response.text, "consent_ticket")),
            ("csrf_token", hidden(response.text, "csrf_token")), ("decision", decision),
            *(("scope_ok", s) for s in ticked)]
    return await client.post("/auth/authorize", content=urlencode(form),
                             headers={"Content-Type": "application/x-www-form-urlencoded"})


async def password_sign_in(client: httpx.AsyncClient, params: dict[str, str], username: str = "aigerim",
                           password: str = PASSWORD, keep: list[str] | None = None) -> httpx.Response:
    form = {**await sign_in_form(client, params), "signin_method": "password", "username": username,
            "password": password}
    return await approve(client, await client.post("/auth/authorize", data=form), keep)


@pytest.fixture
def sign_in(server: httpx.AsyncClient) -> SignIn:
    """The browser's part: GET /authorize shows the form; POST it with the credentials; answer the consent
    screen (the first time); the redirect's query."""

    async def run(params: dict[str, str], username: str = "aigerim", password: str = PASSWORD) -> dict[str, str]:
        return redirect_query(await password_sign_in(server, params, username, password))

    return run


@pytest.fixture
def exchange(server: httpx.AsyncClient, pkce: Pkce) -> Callable[..., Any]:
    async def run(code: str, verifier: str | None = None) -> httpx.Response:
        return await server.post("/auth/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": APP,
            "code_verifier": verifier or pkce.verifier})

    return run
