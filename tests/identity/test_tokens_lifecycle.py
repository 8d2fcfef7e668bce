"""Refresh tokens rotate (the old one is refused after use; a reused one ends the sign-in), RFC 7009
revocation stops refresh and access tokens, RFC 7662 introspection says what a token is and whether it is
still active (issue 16 §1)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.identity.conftest import APP, authorize_params

pytestmark = pytest.mark.req("TM-04")


@pytest.fixture
async def tokens(server, pkce, sign_in, exchange) -> dict[str, Any]:
    response = await exchange((await sign_in(authorize_params(pkce)))["code"])
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _refresh(server, token: str, **extra: str):
    return server.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": token,
                                            "client_id": APP, **extra})


async def test_a_refresh_token_is_rotated_and_the_old_one_refused(server, tokens):
    first = await _refresh(server, tokens["refresh_token"])
    assert first.status_code == 200, first.text
    new = first.json()
    assert new["refresh_token"] != tokens["refresh_token"]
    assert new["access_token"] != tokens["access_token"]
    assert new["patient"] == "p1" and new["scope"] == tokens["scope"]
    assert (await server.get("/Patient/p1", headers={"Authorization": f"Bearer {new['access_token']}"})
            ).status_code == 200
    again = await _refresh(server, tokens["refresh_token"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


async def test_reusing_a_spent_refresh_token_ends_the_whole_chain(server, tokens):
    rotated = (await _refresh(server, tokens["refresh_token"])).json()["refresh_token"]
    assert (await _refresh(server, tokens["refresh_token"])).status_code == 400  # stolen copy presented
    chained = await _refresh(server, rotated)  # so the legitimate successor stops too (RFC 9700 §4.14.2)
    assert chained.status_code == 400 and chained.json()["error"] == "invalid_grant"


async def test_refresh_may_narrow_the_scope_but_not_widen_it(server, tokens):
    narrow = await _refresh(server, tokens["refresh_token"], scope="patient/*.rs")
    assert narrow.status_code == 200 and narrow.json()["scope"] == "patient/*.rs"
    wide = await _refresh(server, narrow.json()["refresh_token"], scope="patient/*.rs user/*.rs")
    assert wide.status_code == 400 and wide.json()["error"] == "invalid_scope"


async def test_another_client_cannot_use_the_refresh_token(server, tokens, registry):
    from fhir_server.identity.registration import new_client

    registry.add_client(new_client("other-app", "Other", redirect_uris=["https://other.example.kz/cb"],
                                   scopes=["patient/*.rs", "offline_access"]))
    stolen = await server.post("/auth/token", data={"grant_type": "refresh_token", "client_id": "other-app",
                                                    "refresh_token": tokens["refresh_token"]})
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"


async def test_a_revoked_refresh_token_stops_working(server, tokens):
    revoked = await server.post("/auth/revoke", data={"token": tokens["refresh_token"], "client_id": APP,
                                                      "token_type_hint": "refresh_token"})
    assert revoked.status_code == 200
    refused = await _refresh(server, tokens["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"


async def test_a_revoked_access_token_is_refused_by_the_fhir_api(server, tokens):
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await server.get("/Observation", headers=bearer)).status_code == 200  # now remembered by the verifier
    assert (await server.post("/auth/revoke", data={"token": tokens["access_token"], "client_id": APP})
            ).status_code == 200
    refused = await server.get("/Observation", headers=bearer)
    assert refused.status_code == 401, refused.text
    assert "revoked" in refused.json()["issue"][0]["diagnostics"]


async def test_revoking_an_unknown_token_answers_200(server, tokens):
    response = await server.post("/auth/revoke", data={"token": "not-a-token", "client_id": APP})
    assert response.status_code == 200  # RFC 7009 §2.2: invalid tokens do not cause an error


async def test_introspection_of_an_active_access_token(server, tokens):
    response = await server.post("/auth/introspect", data={"token": tokens["access_token"], "client_id": APP})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["active"] is True and body["client_id"] == APP and body["sub"] == "aigerim"
    assert body["scope"] == tokens["scope"] and body["patient"] == "p1" and body["role"] == "patient"
    assert body["fhirUser"].endswith("/Patient/p1") and body["exp"] > body["iat"]


async def test_introspection_of_a_refresh_token_and_after_revocation(server, tokens):
    alive = (await server.post("/auth/introspect", data={"token": tokens["refresh_token"], "client_id": APP})).json()
    assert alive["active"] is True and alive["token_type"] == "refresh_token"
    await server.post("/auth/revoke", data={"token": tokens["access_token"], "client_id": APP})
    gone = (await server.post("/auth/introspect", data={"token": tokens["access_token"], "client_id": APP})).json()
    assert gone == {"active": False}


async def test_introspection_of_garbage_is_inactive(server, tokens):
    for token in ("garbage", "a.b.c"):
        body = (await server.post("/auth/introspect", data={"token": token, "client_id": APP})).json()
        assert body == {"active": False}


async def test_a_client_cannot_introspect_another_clients_token(server, tokens, registry):
    from fhir_server.identity.registration import new_client

    registry.add_client(new_client("nosy", "Nosy", redirect_uris=["https://nosy.example.kz/cb"], scopes=["openid"]))
    body = (await server.post("/auth/introspect", data={"token": tokens["access_token"], "client_id": "nosy"})).json()
    assert body == {"active": False}


async def test_introspection_needs_a_known_client(server, tokens):
    response = await server.post("/auth/introspect", data={"token": tokens["access_token"]})
    assert response.status_code in (400, 401) and response.json()["error"] == "invalid_client"


async def test_a_revoked_access_token_is_refused_by_the_compiled_read_by_id(server, tokens):
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await server.get("/Observation/o1", headers=bearer)).status_code == 200
    await server.post("/auth/revoke", data={"token": tokens["access_token"], "client_id": APP})
    assert (await server.get("/Observation/o1", headers=bearer)).status_code == 401
