"""SMART Backend Services: an MIS registered by an administrator with its organisation's BIN authenticates
with a signed assertion (private_key_jwt, RS384 and ES384), gets a token of at most 300 s that carries
role system and its bin, and reads under the access policy. Wrong key, replayed jti, expired assertion and
wrong audience are refused (issue 16 §2)."""

from __future__ import annotations

import time

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from tests.identity.conftest import BACKEND, MIS_BIN

pytestmark = pytest.mark.req("TM-04")


async def _token(server, form):
    return await server.post("/auth/token", data=form)


async def test_a_backend_client_gets_a_short_system_token_with_its_bin(server, backend):
    response = await _token(server, backend.form(scope="system/Observation.rs system/Patient.rs"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] <= 300
    assert body["scope"] == "system/Observation.rs system/Patient.rs" and "refresh_token" not in body
    keys = KeySet.import_key_set((await server.get("/auth/jwks")).json())
    claims = jwt.decode(body["access_token"], keys, algorithms=["ES256"]).claims
    assert claims["role"] == "system" and claims["bin"] == MIS_BIN and claims["sub"] == BACKEND
    assert claims["client_id"] == BACKEND and claims["exp"] - claims["iat"] <= 300 and claims["jti"]


async def test_the_backend_token_is_accepted_and_the_policy_decides(server, backend):
    token = (await _token(server, backend.form(scope="system/Observation.rs"))).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    search = await server.get("/Observation", headers=bearer)
    assert search.status_code == 200, search.text
    assert search.json().get("entry", []) == []  # no Consent grants this organisation anything (AC-12)
    outside = await server.get("/Patient", headers=bearer)
    assert outside.status_code == 403  # not in the granted scope


async def test_scopes_beyond_the_registration_are_not_granted(server, backend):
    narrowed = await _token(server, backend.form(scope="system/Observation.rs system/Observation.cud"))
    assert narrowed.json()["scope"] == "system/Observation.rs"
    none = await _token(server, backend.form(scope="system/Observation.cud"))
    assert none.status_code == 400 and none.json()["error"] == "invalid_scope"


async def test_an_assertion_signed_with_another_key_is_refused(server, backend):
    other = RSAKey.generate_key(2048, private=True) if backend.alg == "RS384" else ECKey.generate_key(
        "P-384", private=True)
    other.ensure_kid()
    response = await _token(server, backend.form(key=other))
    assert response.status_code in (400, 401) and response.json()["error"] == "invalid_client"


async def test_a_replayed_assertion_is_refused(server, backend):
    form = backend.form(jti="once-only")
    assert (await _token(server, form)).status_code == 200
    replay = await _token(server, form)
    assert replay.status_code in (400, 401) and replay.json()["error"] == "invalid_client"
    assert "used" in replay.json()["error_description"]


async def test_an_expired_assertion_is_refused(server, backend):
    response = await _token(server, backend.form(now=int(time.time()) - 600, exp_in=120))
    assert response.status_code in (400, 401) and response.json()["error"] == "invalid_client"


async def test_an_assertion_living_longer_than_five_minutes_is_refused(server, backend):
    response = await _token(server, backend.form(exp_in=3600))
    assert response.status_code in (400, 401) and "five minutes" in response.json()["error_description"]


async def test_an_assertion_for_another_audience_is_refused(server, backend):
    response = await _token(server, backend.form(aud="https://elsewhere.example.kz/token"))
    assert response.status_code in (400, 401) and response.json()["error"] == "invalid_client"


async def test_an_unknown_client_is_refused(server, backend):
    response = await _token(server, backend.form(client_id="who-knows"))
    assert response.status_code in (400, 401) and response.json()["error"] == "invalid_client"


async def test_client_credentials_without_an_assertion_are_refused(server, backend):
    response = await _token(server, {"grant_type": "client_credentials", "client_id": BACKEND,
                                     "scope": "system/Observation.rs"})
    assert response.status_code in (400, 401) and response.json()["error"] == "invalid_client"


async def test_an_hs256_assertion_is_refused(server, backend, registry):
    from joserfc.jwk import OctKey

    secret = OctKey.import_key("a shared secret that is long enough!!")
    claims = {"iss": BACKEND, "sub": BACKEND, "aud": "http://kzfhir.test/auth/token", "exp": int(time.time()) + 60,
              "jti": "hs"}
    form = {**backend.form(), "client_assertion": jwt.encode({"alg": "HS256"}, claims, secret,
                                                             algorithms=["HS256"])}
    response = await _token(server, form)
    assert response.status_code in (400, 401) and response.json()["error"] == "invalid_client"


async def test_a_disabled_client_gets_no_token(server, backend, registry):
    registry.set_client_disabled(BACKEND, True)
    response = await _token(server, backend.form())
    assert response.status_code in (400, 401) and response.json()["error"] == "invalid_client"
