"""eGov OIDC federation (issue 16 §3) against a real local OpenID Connect provider (tests/identity/
oidc_provider.py, on a free port): the whole browser-less flow with httpx, the provider's answer checked
(state, nonce, PKCE, iss, aud, exp, signature), and the IIN claim mapped to the user."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc.jwk import RSAKey

from fhir_server.config import Settings
from fhir_server.identity.registration import new_user
from fhir_server.identity.registry import Registry
from fhir_server.security.refs import IIN_SYSTEM
from tests.conftest import BASE
from tests.identity.conftest import APP, PASSWORD, _store, approve, authorize_params, redirect_query, sign_in_form
from tests.identity.oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider, running

pytestmark = pytest.mark.req("TM-04")
CALLBACK = f"{BASE}/auth/federation/callback"
IIN = "123456789011"


@pytest.fixture
def idp() -> Iterator[Provider]:
    with running(Provider(redirect_uri=CALLBACK)) as provider:
        yield provider


@pytest.fixture
def settings(tmp_path: Path, idp: Provider) -> Settings:
    return Settings(database=tmp_path / "test.sqlite", synchronous_full=False, dev_key_path=tmp_path / "dev-jwks.json",
                    auth_server=True, base_url=BASE, auth_allow_http=True, auth_oidc_issuer=idp.issuer,
                    auth_oidc_client_id=CLIENT_ID, auth_oidc_client_secret=CLIENT_SECRET)


@pytest.fixture
def citizen(registry: Registry) -> None:
    registry.add_user(new_user("aigerim.egov", PASSWORD, "patient", "Patient/p1", None, iin=IIN))


async def _to_provider(server: httpx.AsyncClient, params: dict[str, str]) -> str:
    """The browser clicks the provider's button and is sent to the provider; returns the provider URL."""
    form = {**await sign_in_form(server, params), "signin_method": "oidc"}
    response = await server.post("/auth/authorize", data=form)
    assert response.status_code == 303, response.text
    return response.headers["location"]


async def _at_provider(url: str) -> str:
    """The provider (the person is signed in there) sends the browser back; returns our callback URL."""
    async with httpx.AsyncClient() as browser:
        answer = await browser.get(url)
    assert answer.status_code in (302, 307), answer.text
    location = answer.headers["location"]
    assert location.startswith(CALLBACK)
    return location.removeprefix(BASE)


async def test_a_person_signs_in_through_the_identity_provider(server, idp, citizen, pkce, exchange):
    params = authorize_params(pkce)
    there = await _to_provider(server, params)
    query = {k: v[0] for k, v in parse_qs(urlsplit(there).query).items()}
    assert there.startswith(f"{idp.issuer}/authorize")
    assert query["code_challenge_method"] == "S256" and query["nonce"] and query["state"]
    assert query["client_id"] == CLIENT_ID and query["redirect_uri"] == CALLBACK and query["scope"] == "openid"
    back = await server.get(await _at_provider(there))
    app_query = redirect_query(await approve(server, back))
    assert app_query["state"] == params["state"]
    body = (await exchange(app_query["code"])).json()
    claims = (await server.post("/auth/introspect", data={"client_id": APP, "token": body["access_token"]})).json()
    assert claims["sub"] == "aigerim.egov" and claims["fhirUser"].endswith("Patient/p1")
    assert body["patient"] == "p1"
    own = await server.get("/Patient/p1", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert own.status_code == 200


async def test_the_callback_is_single_use_and_bound_to_the_browser(server, idp, citizen, pkce):
    back = await _at_provider(await _to_provider(server, authorize_params(pkce)))
    async with httpx.AsyncClient(transport=server._transport, base_url=BASE) as other_browser:
        stolen = await other_browser.get(back)  # login CSRF: the attacker's callback in the victim's browser
    assert stolen.status_code == 400 and "another browser" in stolen.text
    back = await _at_provider(await _to_provider(server, authorize_params(pkce)))
    assert (await server.get(back)).status_code == 200
    assert (await server.get(back)).status_code == 400  # the state is spent


@pytest.mark.parametrize("tamper", [
    {"claims": {"nonce": "another"}},
    {"claims": {"aud": "someone-else"}},
    {"claims": {"aud": [CLIENT_ID, "someone-else"]}},  # several audiences and no azp
    {"claims": {"iss": "https://evil.example"}},
    {"claims": {"exp": int(time.time()) - 600}},
    {"key": RSAKey.generate_key(2048, private=True, parameters={"kid": "rogue"})},
    {"claims": {"iin": "not an iin"}},
])
async def test_an_id_token_that_does_not_verify_is_refused(server, idp, citizen, pkce, tamper):
    idp.tamper = tamper
    response = await server.get(await _at_provider(await _to_provider(server, authorize_params(pkce))))
    assert response.status_code == 401 and "location" not in response.headers


async def test_a_provider_whose_discovery_names_another_issuer_is_not_used(server, idp, pkce):
    idp.tamper = {"discovery_issuer": "https://impostor.example"}
    form = {**await sign_in_form(server, authorize_params(pkce)), "signin_method": "oidc"}
    response = await server.post("/auth/authorize", data=form)
    assert response.status_code == 502 and "another issuer" in response.text


async def test_a_refusal_at_the_provider_reaches_the_app_as_access_denied(server, idp, citizen, pkce):
    idp.tamper = {"deny": True}
    params = authorize_params(pkce)
    query = redirect_query(await server.get(await _at_provider(await _to_provider(server, params))))
    assert query["error"] == "access_denied" and query["state"] == params["state"]
    assert idp.token_requests == 0


async def test_an_unknown_iin_is_refused_and_a_patient_identifier_is_found(server, idp, registry, pkce, exchange):
    refused = await server.get(await _at_provider(await _to_provider(server, authorize_params(pkce))))
    assert refused.status_code == 401 and "No account" in refused.text
    await _store(server.app, {"resourceType": "Patient", "id": "p7", "identifier": [
        {"system": IIN_SYSTEM, "value": IIN}], "name": [{"family": "Ахметова"}]})
    registry.add_user(new_user("aigerim.p7", PASSWORD, "patient", "Patient/p7", None))
    back = await server.get(await _at_provider(await _to_provider(server, authorize_params(pkce))))
    body = (await exchange(redirect_query(await approve(server, back))["code"])).json()
    claims = (await server.post("/auth/introspect", data={"client_id": APP, "token": body["access_token"]})).json()
    assert claims["sub"] == "aigerim.p7"


@pytest.mark.req("AC-14")
async def test_federated_sign_ins_are_audited(server, idp, citizen, pkce, auth):
    await approve(server, await server.get(await _at_provider(await _to_provider(server, authorize_params(pkce)))))
    found = await server.get("/AuditEvent?_count=200", headers=auth("auditor", "Practitioner/aud1"))
    texts = [(e["resource"]["outcome"], e["resource"].get("outcomeDesc", "")) for e in found.json().get("entry", [])]
    assert ("0", "signed in (oidc)") in texts
