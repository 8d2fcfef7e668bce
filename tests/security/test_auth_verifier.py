"""Bearer token verification: algorithms, signatures, lifetimes, issuer/audience, claim mapping."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from fhir_server.security.auth import AuthError, TokenVerifier, VerifierConfig

ISSUER = "https://idp.example.kz"
AUDIENCE = "https://fhir.example.kz"


@pytest.fixture(scope="module")
def rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "use": "sig"})


@pytest.fixture(scope="module")
def ec_key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "ec-1", "use": "sig"})


@pytest.fixture
def jwks_file(tmp_path: Path, rsa_key: RSAKey, ec_key: ECKey) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [rsa_key.as_dict(private=False), ec_key.as_dict(private=False)]}))
    return path


@pytest.fixture
def verifier(jwks_file: Path) -> TokenVerifier:
    return TokenVerifier(VerifierConfig(jwks_path=jwks_file, issuer=ISSUER, audience=AUDIENCE))


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "iat": now,
        "exp": now + 600,
        "role": "practitioner",
        "fhirUser": "Practitioner/1",
        "scope": "user/*.rs",
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def sign(key: Any, alg: str, body: dict[str, Any], kid: str | None = "default") -> str:
    header: dict[str, Any] = {"alg": alg}
    if kid == "default":
        kid = key.kid
    if kid is not None:
        header["kid"] = kid
    return jwt.encode(header, body, key, algorithms=[alg])


def _part(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


def unsigned(body: dict[str, Any]) -> str:
    return f"{_part(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{_part(json.dumps(body).encode())}."


def hmac_token(secret: bytes, body: dict[str, Any], kid: str) -> str:
    """An HS256 token built by hand (joserfc itself refuses public keys as HMAC secrets)."""
    signing_input = f"{_part(json.dumps({'alg': 'HS256', 'kid': kid}).encode())}.{_part(json.dumps(body).encode())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_part(mac)}"


@pytest.mark.req("TM-04")
async def test_verify_accepts_rs256_token_from_jwks_file(verifier: TokenVerifier, rsa_key: RSAKey) -> None:
    context = await verifier.verify(sign(rsa_key, "RS256", claims()))
    assert context.authenticated
    assert (context.role, context.fhir_user, context.subject) == ("practitioner", "Practitioner/1", "user-1")
    assert context.scopes == ("user/*.rs",)


@pytest.mark.req("TM-04")
async def test_verify_accepts_es256_token_from_jwks_file(verifier: TokenVerifier, ec_key: ECKey) -> None:
    context = await verifier.verify(sign(ec_key, "ES256", claims(role="patient", fhirUser="Patient/7")))
    assert (context.role, context.fhir_user) == ("patient", "Patient/7")


async def test_verify_finds_key_by_type_when_token_has_no_kid(verifier: TokenVerifier, ec_key: ECKey) -> None:
    context = await verifier.verify(sign(ec_key, "ES256", claims(), kid=None))
    assert context.fhir_user == "Practitioner/1"


async def test_verify_refuses_expired_token(verifier: TokenVerifier, rsa_key: RSAKey) -> None:
    now = int(time.time())
    with pytest.raises(AuthError, match="expired"):
        await verifier.verify(sign(rsa_key, "RS256", claims(iat=now - 7200, exp=now - 3600)))


async def test_verify_refuses_token_not_yet_valid(verifier: TokenVerifier, rsa_key: RSAKey) -> None:
    with pytest.raises(AuthError, match="nbf"):
        await verifier.verify(sign(rsa_key, "RS256", claims(nbf=int(time.time()) + 3600)))


async def test_verify_tolerates_clock_skew_within_leeway(verifier: TokenVerifier, rsa_key: RSAKey) -> None:
    now = int(time.time())
    context = await verifier.verify(sign(rsa_key, "RS256", claims(exp=now - 5, nbf=now + 5)))
    assert context.authenticated


async def test_verify_refuses_token_signed_by_another_key(verifier: TokenVerifier) -> None:
    impostor = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
    with pytest.raises(AuthError, match="signature"):
        await verifier.verify(sign(impostor, "RS256", claims()))


async def test_verify_refuses_token_with_unknown_key_id(verifier: TokenVerifier) -> None:
    stranger = ECKey.generate_key("P-256", parameters={"kid": "not-in-jwks"})
    with pytest.raises(AuthError, match="unknown key"):
        await verifier.verify(sign(stranger, "ES256", claims()))


async def test_verify_refuses_alg_none(verifier: TokenVerifier) -> None:
    with pytest.raises(AuthError, match="algorithm"):
        await verifier.verify(unsigned(claims()))


async def test_verify_refuses_hs256_when_dev_mode_is_off(verifier: TokenVerifier) -> None:
    with pytest.raises(AuthError, match="algorithm"):
        await verifier.verify(sign(OctKey.import_key(b"s" * 32), "HS256", claims(), kid=None))


async def test_verify_accepts_hs256_only_in_dev_mode_with_secret(jwks_file: Path) -> None:
    secret = b"development-only-secret-32-bytes!"
    config = VerifierConfig(jwks_path=jwks_file, algorithms=("ES256", "HS256"), dev_mode=True, dev_hs256_secret=secret)
    verifier = TokenVerifier(config)
    assert (await verifier.verify(sign(OctKey.import_key(secret), "HS256", claims(), kid=None))).authenticated
    with pytest.raises(AuthError, match="signature"):
        await verifier.verify(sign(OctKey.import_key(b"x" * 32), "HS256", claims(), kid=None))


async def test_verify_refuses_hmac_signed_with_public_key_material(jwks_file: Path, rsa_key: RSAKey) -> None:
    # Algorithm confusion: an attacker uses the server's public key as the HMAC secret.
    secret = b"development-only-secret-32-bytes!"
    config = VerifierConfig(jwks_path=jwks_file, algorithms=("RS256", "HS256"), dev_mode=True, dev_hs256_secret=secret)
    forged = hmac_token(rsa_key.as_pem(private=False), claims(), kid="rsa-1")
    with pytest.raises(AuthError, match="signature"):
        await TokenVerifier(config).verify(forged)


def test_config_refuses_hs256_outside_dev_mode(jwks_file: Path) -> None:
    with pytest.raises(ValueError, match="development"):
        VerifierConfig(jwks_path=jwks_file, algorithms=("HS256",), dev_hs256_secret=b"x" * 32)
    with pytest.raises(ValueError, match="unsupported"):
        VerifierConfig(jwks_path=jwks_file, algorithms=("none",))


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "a.b", "x" * 20_000, "eyJhbGciOiJSUzI1NiJ9.!!.??"])
async def test_verify_refuses_malformed_tokens(verifier: TokenVerifier, token: str) -> None:
    with pytest.raises(AuthError):
        await verifier.verify(token)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"iss": "https://evil.example"}, "iss"),
        ({"aud": "https://other.example"}, "aud"),
        ({"exp": None}, "exp"),
        ({"sub": None}, "subject"),
    ],
)
async def test_verify_refuses_wrong_or_missing_registered_claims(
    verifier: TokenVerifier, rsa_key: RSAKey, override: dict[str, Any], message: str
) -> None:
    with pytest.raises(AuthError, match=message):
        await verifier.verify(sign(rsa_key, "RS256", claims(**override)))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"role": None}, "no role"),
        ({"role": "superuser"}, "unknown role"),
        ({"role": "patient", "fhirUser": "Practitioner/1"}, "Patient"),
        ({"role": "related-person", "fhirUser": None}, "RelatedPerson"),
        ({"role": "system", "fhirUser": None}, "bin"),
        ({"bin": "12345"}, "BIN"),
        ({"fhirUser": "not a reference"}, "fhirUser"),
        ({"break_glass": {"reason": "x"}}, "exp"),
    ],
)
async def test_verify_refuses_tokens_whose_identity_claims_do_not_bind(
    verifier: TokenVerifier, rsa_key: RSAKey, override: dict[str, Any], message: str
) -> None:
    with pytest.raises(AuthError, match=message):
        await verifier.verify(sign(rsa_key, "RS256", claims(**override)))


async def test_claims_map_onto_request_context(verifier: TokenVerifier, rsa_key: RSAKey) -> None:
    now = int(time.time())
    body = claims(
        fhirUser="https://fhir.example.kz/fhir/Practitioner/42/_history/3",
        role=None,
        kzfhir_role="practitioner",
        organization="940140000385",
        scope=None,
        scp=["user/Observation.rs", "openid"],
        on_behalf_of="Patient/7",
        purpose_of_use="http://terminology.hl7.org/CodeSystem/v3-ActReason|ETREAT",
        break_glass={"reason": "cardiac arrest", "exp": now + 99_999},
        patient="7",
        azp="mis-app",
        jti="token-1",
    )
    context = await verifier.verify(sign(rsa_key, "RS256", body))
    assert context.fhir_user == "Practitioner/42"
    assert context.role == "practitioner"
    assert context.organization_bin == "940140000385"
    assert context.scopes == ("user/Observation.rs", "openid")
    assert (context.on_behalf_of, context.purpose_of_use) == ("Patient/7", "ETREAT")
    assert context.break_glass_reason == "cardiac arrest"
    assert context.break_glass_until == body["exp"]  # capped by the token lifetime (AC-02)
    assert (context.launch_patient, context.client_id, context.token_id) == ("Patient/7", "mis-app", "token-1")


async def test_jwks_url_is_fetched_once_and_cached(rsa_key: RSAKey) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(200, json={"keys": [rsa_key.as_dict(private=False)]})

    config = VerifierConfig(jwks_url="https://idp.example.kz/jwks", issuer=ISSUER, audience=AUDIENCE)
    verifier = TokenVerifier(config, transport=httpx.MockTransport(handler))
    for _ in range(3):
        await verifier.verify(sign(rsa_key, "RS256", claims()))
    assert calls == ["https://idp.example.kz/jwks"]


async def test_jwks_url_is_refetched_when_a_new_key_id_appears(rsa_key: RSAKey, ec_key: ECKey) -> None:
    published = [rsa_key.as_dict(private=False)]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"keys": list(published)})

    config = VerifierConfig(
        jwks_url="https://idp.example.kz/jwks", issuer=ISSUER, audience=AUDIENCE, jwks_min_refresh_seconds=0
    )
    verifier = TokenVerifier(config, transport=httpx.MockTransport(handler))
    await verifier.verify(sign(rsa_key, "RS256", claims()))
    published.append(ec_key.as_dict(private=False))  # the identity provider rotates in a new key
    assert (await verifier.verify(sign(ec_key, "ES256", claims()))).authenticated


async def test_unreachable_jwks_means_401_not_a_crash(rsa_key: RSAKey) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    config = VerifierConfig(jwks_url="https://idp.example.kz/jwks")
    verifier = TokenVerifier(config, transport=httpx.MockTransport(handler))
    with pytest.raises(AuthError, match="keys are unavailable"):
        await verifier.verify(sign(rsa_key, "RS256", claims()))
