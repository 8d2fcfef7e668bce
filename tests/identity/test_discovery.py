"""The discovery documents carry what SMART App Launch 2.2 (conformance.html) and OpenID Connect Discovery
require, and point at endpoints that answer; the JWKS publishes public keys only."""

from __future__ import annotations

import pytest

from tests.conftest import BASE

pytestmark = pytest.mark.req("TM-04")

ISSUER = f"{BASE}/auth"


async def test_smart_configuration_has_the_required_fields(server):
    response = await server.get("/.well-known/smart-configuration")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    body = response.json()
    # REQUIRED in SMART App Launch 2.2: token_endpoint, grant_types_supported, capabilities,
    # code_challenge_methods_supported; authorization_endpoint with launch-*; issuer + jwks_uri with sso-openid-connect
    for field in ("token_endpoint", "grant_types_supported", "capabilities", "code_challenge_methods_supported",
                  "authorization_endpoint", "issuer", "jwks_uri"):
        assert body.get(field), field
    assert body["issuer"] == ISSUER and body["token_endpoint"] == f"{ISSUER}/token"
    assert body["code_challenge_methods_supported"] == ["S256"]  # S256 SHALL be there, plain SHALL NOT
    assert {"authorization_code", "client_credentials", "refresh_token"} <= set(body["grant_types_supported"])
    assert {"launch-ehr", "launch-standalone", "client-public", "client-confidential-asymmetric",
            "context-ehr-patient", "sso-openid-connect", "permission-v2", "permission-offline"} <= set(
        body["capabilities"])
    assert "private_key_jwt" in body["token_endpoint_auth_methods_supported"]
    assert {"RS384", "ES384"} <= set(body["token_endpoint_auth_signing_alg_values_supported"])
    assert body["introspection_endpoint"] == f"{ISSUER}/introspect"
    assert body["revocation_endpoint"] == f"{ISSUER}/revoke"
    assert {"openid", "fhirUser", "launch", "launch/patient", "offline_access"} <= set(body["scopes_supported"])
    # granular SMART v2 scopes (scopes-and-launch-context.html#finer-grained-resource-constraints) are advertised
    assert "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs" \
        in body["scopes_supported"]
    assert body["response_types_supported"] == ["code"]


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/auth/.well-known/openid-configuration"])
async def test_openid_configuration_has_the_required_fields(server, path):
    body = (await server.get(path)).json()
    for field in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "response_types_supported",
                  "subject_types_supported", "id_token_signing_alg_values_supported"):
        assert body.get(field), field
    assert body["issuer"] == ISSUER and body["id_token_signing_alg_values_supported"] == ["ES256"]


async def test_the_endpoints_named_are_the_ones_that_answer(server):
    body = (await server.get("/.well-known/smart-configuration")).json()
    for field in ("jwks_uri", "authorization_endpoint", "token_endpoint", "introspection_endpoint",
                  "revocation_endpoint"):
        path = body[field].removeprefix(BASE)
        response = await (server.get(path) if field == "jwks_uri" else server.post(path, data={}))
        assert response.status_code != 404, field


async def test_the_jwks_publishes_the_signing_key_without_private_members(server):
    body = (await server.get("/auth/jwks")).json()
    assert len(body["keys"]) == 1
    key = body["keys"][0]
    assert key["kty"] == "EC" and key["crv"] == "P-256" and key["kid"] and key["alg"] == "ES256"
    assert "d" not in key


async def test_without_the_setting_there_is_no_authorization_server(tmp_path):
    import httpx

    from fhir_server.api.app import create_app
    from fhir_server.config import Settings

    app = create_app(Settings(database=tmp_path / "off.sqlite", dev_key_path=tmp_path / "dev.json",
                              synchronous_full=False))
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                                   base_url=BASE) as plain:
        assert (await plain.get("/.well-known/smart-configuration")).status_code in (401, 404)
        assert (await plain.post("/auth/token", data={"grant_type": "client_credentials"})).status_code != 200
    assert not (tmp_path / "auth-jwks.json").exists()


async def test_plain_http_off_loopback_is_refused_unless_allowed(tmp_path, pkce):
    import httpx

    from fhir_server.api.app import create_app
    from fhir_server.config import Settings
    from tests.identity.conftest import authorize_params

    app = create_app(Settings(database=tmp_path / "db.sqlite", dev_key_path=tmp_path / "dev.json",
                              synchronous_full=False, auth_server=True, base_url=BASE))
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                                   base_url=BASE) as plain:
        token = await plain.post("/auth/token", data={"grant_type": "client_credentials"})
        assert token.status_code == 400 and token.json()["error"] == "insecure_transport"
        page = await plain.get("/auth/authorize", params=authorize_params(pkce))
        assert page.status_code == 400 and "insecure_transport" in page.text and "location" not in page.headers
