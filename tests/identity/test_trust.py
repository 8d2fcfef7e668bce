"""The resource server trusts the built-in authorization server's issuer, in development and in production
(where it counts as a configured identity provider), without that trust weakening any other: a token naming
the built-in issuer is checked against the built-in key alone, the development key stays untrusted in
production, and lifetimes stay within KZFHIR_MAX_TOKEN_LIFETIME_SECONDS (issue 16 §1, issue 10 §6)."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.identity.issuer import IdentityConfig
from fhir_server.identity.keys import ensure_keys, rotate_key
from fhir_server.security.auth import AuthError, issue_dev_token
from fhir_server.security.setup import build_verifier
from tests.identity.conftest import APP, authorize_params

pytestmark = pytest.mark.req("TM-04")
HTTPS = "https://fhir.example.kz"


def _builtin_token(settings: Settings, **claims: object) -> str:
    config = IdentityConfig.from_settings(settings)
    key = ensure_keys(config.key_path).active
    now = int(time.time())
    body = {"iss": config.issuer, "aud": config.audience, "sub": "aigerim", "iat": now, "exp": now + 300,
            "jti": "t1", "role": "patient", "fhirUser": "Patient/p1", "scope": "patient/*.rs", **claims}
    return jwt.encode({"alg": "ES256", "kid": key.kid}, body, key, algorithms=["ES256"])


def _production(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"database": tmp_path / "db.sqlite", "dev_key_path": tmp_path / "dev.json",
                                 "env": "production", "auth_server": True, "base_url": HTTPS}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def test_production_with_the_builtin_server_starts_and_trusts_only_it(tmp_path):
    settings = _production(tmp_path)
    verifier = build_verifier(settings)
    assert verifier is not None
    context = await verifier.verify(_builtin_token(settings))
    assert context.role == "patient" and context.fhir_user == "Patient/p1"
    assert not settings.dev_key_path.exists()  # the development key is neither trusted nor created
    dev = issue_dev_token("admin", None, key_path=tmp_path / "elsewhere.json")
    with pytest.raises(AuthError):
        await verifier.verify(dev)


def test_production_without_any_identity_provider_still_refuses_to_start(tmp_path):
    with pytest.raises(ValueError, match="KZFHIR_AUTH_SERVER"):
        build_verifier(_production(tmp_path, auth_server=False))


def test_production_needs_a_public_base_url_and_https(tmp_path):
    with pytest.raises(ValueError, match="KZFHIR_BASE_URL"):
        build_verifier(_production(tmp_path, base_url=None))
    with pytest.raises(ValueError, match="ALLOW_HTTP"):
        build_verifier(_production(tmp_path, auth_allow_http=True))
    with pytest.raises(ValueError, match="https"):
        build_verifier(_production(tmp_path, base_url="http://fhir.example.kz"))


def test_backend_tokens_may_not_live_longer_than_300_seconds(tmp_path):
    with pytest.raises(ValueError, match="300"):
        IdentityConfig.from_settings(_production(tmp_path, auth_backend_token_seconds=301))


async def test_an_external_identity_provider_and_the_builtin_server_are_both_trusted(tmp_path):
    idp_key = ECKey.generate_key("P-256", private=True)
    idp_key.ensure_kid()
    jwks = tmp_path / "idp.json"
    jwks.write_text(json.dumps({"keys": [idp_key.as_dict(private=False)]}))
    settings = _production(tmp_path, jwks_path=jwks, token_issuer="https://idp.egov.kz", token_audience=HTTPS)
    verifier = build_verifier(settings)
    assert verifier is not None
    now = int(time.time())
    external = jwt.encode({"alg": "ES256", "kid": idp_key.kid},
                          {"iss": "https://idp.egov.kz", "aud": HTTPS, "sub": "x", "iat": now, "exp": now + 60,
                           "role": "practitioner", "fhirUser": "Practitioner/1"}, idp_key, algorithms=["ES256"])
    assert (await verifier.verify(external)).role == "practitioner"
    assert (await verifier.verify(_builtin_token(settings))).role == "patient"


async def test_a_token_naming_the_builtin_issuer_is_checked_against_the_builtin_key_only(tmp_path):
    settings = _production(tmp_path, env="development")
    verifier = build_verifier(settings)
    assert verifier is not None
    config = IdentityConfig.from_settings(settings)
    forged = issue_dev_token("patient", "Patient/p1", key_path=settings.dev_key_path,
                             extra_claims={"iss": config.issuer, "aud": config.audience})
    with pytest.raises(AuthError, match=r"unknown key|signature"):
        await verifier.verify(forged)  # the dev key is trusted in development, but not for that issuer
    assert (await verifier.verify(issue_dev_token("patient", "Patient/p1", key_path=settings.dev_key_path))
            ).role == "patient"


async def test_the_builtin_issuer_is_held_to_the_lifetime_cap(tmp_path):
    settings = _production(tmp_path, max_token_lifetime_seconds=120)
    verifier = build_verifier(settings)
    assert verifier is not None
    with pytest.raises(AuthError, match="lifetime"):
        await verifier.verify(_builtin_token(settings, exp=int(time.time()) + 3600))
    assert IdentityConfig.from_settings(settings).access_seconds == 120


async def test_issued_tokens_live_no_longer_than_the_server_accepts(tmp_path, pkce, registry):
    from fhir_server.identity.registration import new_client, new_user
    from tests.identity.conftest import PASSWORD, REDIRECT, password_sign_in

    settings = Settings(database=registry.path.parent / "test.sqlite", synchronous_full=False,
                        dev_key_path=tmp_path / "dev-jwks.json", auth_server=True, base_url="http://kzfhir.test",
                        auth_allow_http=True, max_token_lifetime_seconds=90)
    registry.add_user(new_user("u", PASSWORD, "patient", "Patient/p1", None))
    registry.add_client(new_client(APP, "App", redirect_uris=[REDIRECT], scopes=["patient/*.rs"]))
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                                   base_url="http://kzfhir.test") as c:
        params = {**authorize_params(pkce), "scope": "patient/*.rs"}
        location = (await password_sign_in(c, params, "u")).headers["location"]
        code = httpx.URL(location).params["code"]
        body = (await c.post("/auth/token", data={"grant_type": "authorization_code", "code": code, "client_id": APP,
                                                  "redirect_uri": REDIRECT, "code_verifier": pkce.verifier})).json()
    assert body["expires_in"] == 90


def test_the_key_file_is_private_and_rotation_keeps_the_old_key(tmp_path):
    path = tmp_path / "auth-jwks.json"
    first = ensure_keys(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.active.kid and ensure_keys(path).active.kid == first.active.kid
    rotated = rotate_key(path)
    assert rotated.active.kid != first.active.kid
    assert [k.kid for k in rotated.keys] == [rotated.active.kid, first.active.kid]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert all("d" not in key for key in rotated.public_jwks()["keys"])


async def test_a_token_of_the_old_key_still_verifies_after_rotation(tmp_path):
    settings = _production(tmp_path)
    verifier = build_verifier(settings)
    assert verifier is not None
    old = _builtin_token(settings)
    rotate_key(IdentityConfig.from_settings(settings).key_path)
    new = _builtin_token(settings, jti="t2")  # signed with the new key: the verifier re-reads the file
    assert (await verifier.verify(new)).role == "patient"
    assert (await verifier.verify(old)).role == "patient"


def test_a_token_revoked_by_another_process_is_refused_at_its_very_next_use_here(tmp_path):
    """``--workers N`` share one registry file: a revocation in one process stops the token in the others at
    the next use, not after a refresh interval (issue 11 §3)."""
    import subprocess
    import sys

    from fhir_server.identity.registry import Registry
    from fhir_server.identity.trust import Denylist

    path = tmp_path / "identity.sqlite"
    here = Denylist(Registry(path))
    assert "jti-1" not in here and "jti-2" not in here
    script = ("import sys, time; from pathlib import Path; from fhir_server.identity.registry import Registry; "
              "from fhir_server.identity.trust import Denylist; "
              "Denylist(Registry(Path(sys.argv[1]))).add('jti-1', int(time.time()) + 600)")
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=60)
    assert "jti-1" in here  # at once: no wait, no second look
    assert "jti-2" not in here
    Registry(path).revoke_jti("jti-2", int(time.time()) + 600)  # another connection of this process too
    assert "jti-2" in here
