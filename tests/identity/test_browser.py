"""The browser side of /authorize (issue 16): the login CSRF token, the consent screen (deselect, remember,
revoke), the limit on failed sign-ins, and what revoking a refresh token does to its access tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.identity.browser import COOKIE
from fhir_server.identity.consent import revoke_consent
from fhir_server.identity.issuer import IdentityConfig
from fhir_server.identity.registration import new_client, new_user
from fhir_server.identity.registry import Registry
from tests.conftest import BASE
from tests.identity.conftest import (
    APP,
    PASSWORD,
    REDIRECT,
    approve,
    authorize_params,
    hidden,
    password_sign_in,
    redirect_query,
    sign_in_form,
)

pytestmark = pytest.mark.req("TM-04")


async def test_a_sign_in_post_without_the_browsers_csrf_token_is_refused(server, pkce):
    params = authorize_params(pkce)
    credentials = {"signin_method": "password", "username": "aigerim", "password": PASSWORD}
    no_token = await server.post("/auth/authorize", data={**params, **credentials})
    assert no_token.status_code == 403 and "location" not in no_token.headers
    form = await sign_in_form(server, params)
    assert server.cookies.get(COOKIE)
    # a forged post from another site: the victim's cookie rides along, but the attacker's token is its own
    async with httpx.AsyncClient(transport=server._transport, base_url=BASE) as attacker:
        forged = await sign_in_form(attacker, params)
    assert forged["csrf_token"] != form["csrf_token"]
    refused = await server.post("/auth/authorize", data={**params, **credentials, "csrf_token": forged["csrf_token"]})
    assert refused.status_code == 403 and "location" not in refused.headers
    accepted = await server.post("/auth/authorize", data={**form, **credentials})
    assert accepted.status_code == 200 and 'name="consent_ticket"' in accepted.text


async def test_the_cookie_is_httponly_and_samesite(server, pkce):
    page = await server.get("/auth/authorize", params=authorize_params(pkce))
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/auth" in cookie


async def test_the_person_deselects_a_scope_and_the_answer_is_remembered(server, pkce, exchange):
    params = authorize_params(pkce)
    keep = ["patient/*.rs"]
    first = await password_sign_in(server, params, keep=keep)
    body = (await exchange(redirect_query(first)["code"])).json()
    assert set(body["scope"].split()) == {"openid", "fhirUser", "launch/patient", "patient/*.rs"}
    assert "refresh_token" not in body  # offline_access was deselected
    # the second time: no screen, the same answer
    again = await server.post("/auth/authorize", data={
        **await sign_in_form(server, params), "signin_method": "password", "username": "aigerim",
        "password": PASSWORD})
    assert set((await exchange(redirect_query(again)["code"])).json()["scope"].split()) == set(
        body["scope"].split())


async def test_the_consent_form_cannot_add_scopes_or_be_replayed(server, pkce, exchange):
    params = authorize_params(pkce, scope="openid patient/Observation.rs")
    form = {**await sign_in_form(server, params), "signin_method": "password", "username": "aigerim",
            "password": PASSWORD}
    screen = await server.post("/auth/authorize", data=form)
    ticket, token = hidden(screen.text, "consent_ticket"), hidden(screen.text, "csrf_token")
    answer = {"consent_ticket": ticket, "csrf_token": token, "decision": "approve",
              "scope_ok": "patient/*.cruds", "scope": "patient/*.cruds user/*.cruds"}
    body = (await exchange(redirect_query(await server.post("/auth/authorize", data=answer))["code"])).json()
    assert body["scope"].split() == ["openid"]
    replay = await server.post("/auth/authorize", data=answer)
    assert replay.status_code == 400 and "location" not in replay.headers


async def test_denying_sends_access_denied_and_a_revoked_consent_is_asked_again(server, pkce, registry, exchange):
    params = authorize_params(pkce)
    form = {**await sign_in_form(server, params), "signin_method": "password", "username": "aigerim",
            "password": PASSWORD}
    denied = redirect_query(await approve(server, await server.post("/auth/authorize", data=form),
                                          decision="deny"))
    assert denied["error"] == "access_denied" and denied["state"] == params["state"]
    assert registry.consent("aigerim", APP) is None  # a denial is not remembered
    body = (await exchange(redirect_query(await password_sign_in(server, params))["code"])).json()
    assert registry.consent("aigerim", APP) is not None
    assert revoke_consent(registry, "aigerim", APP) == 1  # and the refresh chain with it
    refreshed = await server.post("/auth/token", data={"grant_type": "refresh_token", "client_id": APP,
                                                       "refresh_token": body["refresh_token"]})
    assert refreshed.status_code == 400
    shown = await server.post("/auth/authorize", data={**await sign_in_form(server, params), **{
        "signin_method": "password", "username": "aigerim", "password": PASSWORD}})
    assert shown.status_code == 200 and 'name="consent_ticket"' in shown.text


@pytest.fixture
async def limited(tmp_path: Path) -> Any:
    settings = Settings(database=tmp_path / "t.sqlite", synchronous_full=False, dev_key_path=tmp_path / "dev.json",
                        auth_server=True, base_url=BASE, auth_allow_http=True, auth_signin_max_failures_per_user=2,
                        auth_signin_max_failures_per_ip=4)
    registry = Registry(IdentityConfig.from_settings(settings).database)
    registry.add_user(new_user("aigerim", PASSWORD, "patient", "Patient/p1", None))
    registry.add_user(new_user("dr.serik", PASSWORD, "practitioner", "Practitioner/dr1", "940140000385"))
    registry.add_client(new_client(APP, "Patient app", redirect_uris=[REDIRECT], scopes=["openid", "patient/*.rs"]))
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        yield c


async def test_failed_sign_ins_are_limited_per_username_and_per_ip(limited, pkce):
    params = authorize_params(pkce, scope="openid patient/*.rs")

    async def attempt(username: str, password: str) -> httpx.Response:
        return await limited.post("/auth/authorize", data={
            **await sign_in_form(limited, params), "signin_method": "password", "username": username,
            "password": password})

    assert (await attempt("aigerim", "guess 1")).status_code == 401
    assert (await attempt("AIGERIM", "guess 2")).status_code == 401
    locked = await attempt("aigerim", PASSWORD)  # even the right password: the name is locked for the window
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    assert (await attempt("dr.serik", "guess 3")).status_code == 401
    assert (await attempt("nobody", "guess 4")).status_code == 401
    assert (await attempt("dr.serik", PASSWORD)).status_code == 429  # four failures from this address


async def test_revoking_a_refresh_token_revokes_its_access_tokens(server, pkce, sign_in, exchange):
    body = (await exchange((await sign_in(authorize_params(pkce)))["code"])).json()
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert (await server.get("/Patient/p1", headers=bearer)).status_code == 200
    refreshed = (await server.post("/auth/token", data={"grant_type": "refresh_token", "client_id": APP,
                                                        "refresh_token": body["refresh_token"]})).json()
    second = {"Authorization": f"Bearer {refreshed['access_token']}"}
    assert (await server.get("/Patient/p1", headers=second)).status_code == 200
    revoked = await server.post("/auth/revoke", data={"client_id": APP, "token": refreshed["refresh_token"],
                                                      "token_type_hint": "refresh_token"})
    assert revoked.status_code == 200
    for headers in (bearer, second):
        assert (await server.get("/Patient/p1", headers=headers)).status_code == 401
    inactive = await server.post("/auth/introspect", data={"client_id": APP, "token": refreshed["access_token"]})
    assert inactive.json() == {"active": False}


@pytest.mark.req("AC-14")
async def test_revocation_and_introspection_are_audited(server, pkce, sign_in, exchange, auth):
    body = (await exchange((await sign_in(authorize_params(pkce)))["code"])).json()
    assert (await server.post("/auth/introspect", data={"client_id": APP, "token": body["access_token"]})
            ).json()["active"] is True
    assert (await server.post("/auth/revoke", data={"client_id": APP, "token": body["access_token"]})
            ).status_code == 200
    assert (await server.post("/auth/revoke", data={"client_id": "nobody", "token": "x"})).status_code in (400, 401)
    found = await server.get("/AuditEvent?_count=200", headers=auth("auditor", "Practitioner/aud1"))
    described = {(e["resource"]["outcome"], e["resource"].get("outcomeDesc", ""))
                 for e in found.json().get("entry", [])}
    assert ("0", f"token introspection by client {APP}: active true") in described
    assert ("0", f"token revocation by client {APP}") in described
    assert any(o == "4" and t.startswith("token revocation refused") for o, t in described)
    assert all(body["access_token"] not in text for _, text in described)
