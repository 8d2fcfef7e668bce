"""Issue 10 §6: a maximum token lifetime, a break-glass window that holds without ``iat``, and
development keys trusted only in development (KZFHIR_ENV=production refuses to start without an
identity provider)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from fhir_server.config import Settings
from fhir_server.security.auth import AuthError, TokenVerifier, VerifierConfig, context_from_request, issue_dev_token
from fhir_server.security.setup import build_verifier, development_notice

ISSUER = "https://idp.example.kz"
AUDIENCE = "https://fhir.example.kz"


@pytest.fixture(scope="module")
def key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "ec-1", "use": "sig"})


@pytest.fixture
def jwks(tmp_path: Path, key: ECKey) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    return path


def _verifier(jwks: Path, **config: Any) -> TokenVerifier:
    return TokenVerifier(VerifierConfig(jwks_path=jwks, issuer=ISSUER, audience=AUDIENCE, **config))


def _token(key: ECKey, **claims: Any) -> str:
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "dr-1", "role": "practitioner", "fhirUser": "Practitioner/1",
            "scope": "user/*.rs", **claims}
    return jwt.encode({"alg": "ES256", "kid": key.kid}, {k: v for k, v in body.items() if v is not None}, key,
                      algorithms=["ES256"])


async def test_a_token_living_longer_than_the_maximum_is_refused(jwks: Path, key: ECKey) -> None:
    now = int(time.time())
    verifier = _verifier(jwks)  # default maximum: one hour
    assert (await verifier.verify(_token(key, iat=now, exp=now + 3600))).fhir_user == "Practitioner/1"
    with pytest.raises(AuthError, match="lifetime exceeds the server's maximum of 3600 s"):
        await verifier.verify(_token(key, iat=now, exp=now + 30 * 86_400))


async def test_without_iat_the_remaining_lifetime_is_bounded(jwks: Path, key: ECKey) -> None:
    now = int(time.time())
    verifier = _verifier(jwks, max_lifetime_seconds=600)
    assert await verifier.verify(_token(key, exp=now + 500))
    with pytest.raises(AuthError, match="lifetime exceeds"):
        await verifier.verify(_token(key, exp=now + 10 * 365 * 86_400))  # the "never expires" token


async def test_a_token_issued_in_the_future_is_refused(jwks: Path, key: ECKey) -> None:
    now = int(time.time())
    with pytest.raises(AuthError, match="issued in the future"):
        await _verifier(jwks).verify(_token(key, iat=now + 600, exp=now + 900))


async def test_the_lifetime_is_checked_again_when_a_verified_token_is_reused(jwks: Path, key: ECKey) -> None:
    now = [float(int(time.time()))]
    verifier = TokenVerifier(VerifierConfig(jwks_path=jwks, issuer=ISSUER, audience=AUDIENCE, leeway_seconds=0,
                                            max_lifetime_seconds=600), clock=lambda: now[0])
    token = _token(key, exp=int(now[0]) + 300)
    await verifier.verify(token)
    now[0] += 400  # expired by now: the remembered verification does not keep it alive
    with pytest.raises(AuthError, match="expired"):
        await verifier.verify(token)


@pytest.mark.req("AC-02")
async def test_break_glass_window_holds_for_a_token_without_iat(jwks: Path, key: ECKey) -> None:
    now = int(time.time())
    exp = now + 3000
    verifier = _verifier(jwks, max_lifetime_seconds=3600, break_glass_window_seconds=900)
    context = await context_from_request({"Authorization": f"Bearer {_token(key, exp=exp)}",
                                          "X-Break-Glass-Reason": "unconscious, no ID"}, None, verifier)
    # no iat: issued at the earliest the lifetime allows (exp - 3600), so the window ends at exp - 2700
    assert context.break_glass_reason == "unconscious, no ID"
    assert context.break_glass_until == exp - 3600 + 900
    assert context.break_glass_until < now + 900  # never later than a token issued just now would get


@pytest.mark.req("AC-02")
async def test_break_glass_window_with_iat_is_iat_plus_window(jwks: Path, key: ECKey) -> None:
    now = int(time.time())
    verifier = _verifier(jwks, break_glass_window_seconds=900)
    token = _token(key, iat=now - 100, exp=now + 3000)
    context = await context_from_request({"Authorization": f"Bearer {token}", "X-Break-Glass-Reason": "stroke"},
                                         None, verifier)
    assert context.break_glass_until == now - 100 + 900


def test_production_refuses_to_start_without_an_identity_provider(tmp_path: Path) -> None:
    settings = Settings(env="production", database=tmp_path / "db.sqlite", dev_key_path=tmp_path / "dev.json")
    with pytest.raises(ValueError, match="KZFHIR_ENV=production needs an identity provider"):
        build_verifier(settings)
    assert not (tmp_path / "dev.json").exists()  # no development key is even created
    with pytest.raises(ValueError, match="refuses to start with security off"):
        build_verifier(Settings(env="production", security_enabled=False))


async def test_production_never_trusts_the_development_key(tmp_path: Path, jwks: Path, key: ECKey) -> None:
    dev_key = tmp_path / "dev-jwks.json"
    settings = Settings(env="production", jwks_path=jwks, token_issuer=ISSUER, token_audience=AUDIENCE,
                        dev_key_path=dev_key)
    verifier = build_verifier(settings)
    assert verifier is not None and development_notice(settings) is None
    forged = issue_dev_token("admin", "Practitioner/root", key_path=dev_key)  # a dev key lying on disk
    with pytest.raises(AuthError):
        await verifier.verify(forged)
    now = int(time.time())
    assert await verifier.verify(_token(key, iat=now, exp=now + 300))


def test_development_mode_says_so(tmp_path: Path) -> None:
    notice = development_notice(Settings(dev_key_path=tmp_path / "dev.json"))
    assert notice is not None and notice.startswith("WARNING: DEVELOPMENT MODE")
    assert development_notice(Settings(security_enabled=False)) is None  # open mode has its own warning


def test_serve_in_production_without_jwks_fails_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "KZFHIR_ENV": "production", "KZFHIR_DATABASE": str(tmp_path / "db.sqlite")}
    env.pop("KZFHIR_JWKS_URL", None)
    env.pop("KZFHIR_JWKS_PATH", None)
    run = subprocess.run([sys.executable, "-m", "fhir_server.cli", "serve", "--port", "1"], capture_output=True,
                         text=True, timeout=60, env=env, cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs an identity provider" in lines[0], run.stderr


def test_kzfhir_token_refuses_what_the_server_would_refuse(tmp_path: Path) -> None:
    """Issue 13: `kzfhir token` issued tokens the server then refused, with exit 0."""
    for args, message in ((["--role", "system", "--bin", "123"], "12-digit BIN"),
                          (["--role", "practitioner", "--fhir-user", "dr1"], "FHIR reference"),
                          (["--role", "system"], "needs a bin claim")):
        run = subprocess.run([sys.executable, "-m", "fhir_server.cli", "token", *args, "--key",
                              str(tmp_path / "dev.json")], capture_output=True, text=True, timeout=60)
        assert run.returncode == 2 and run.stdout == "", run.stderr
        assert len(run.stderr.strip().splitlines()) == 1 and message in run.stderr, run.stderr
    good = subprocess.run([sys.executable, "-m", "fhir_server.cli", "token", "--role", "system", "--bin",
                           "940140000385", "--key", str(tmp_path / "dev.json")], capture_output=True, text=True,
                          timeout=60)
    assert good.returncode == 0 and good.stdout.count(".") == 2


def test_kzfhir_token_does_not_load_the_signing_and_conformance_packages() -> None:
    code = ("import sys; from fhir_server.cli import build_parser; build_parser('token'); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('signing', 'conformance', 'pyhanko')))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.stdout.strip() == "[]", run.stdout + run.stderr
