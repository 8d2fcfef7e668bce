"""JWS with detached payload (application/jose): round trip, tampering, header rules, interop with joserfc."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from joserfc import jws as joserfc_jws
from joserfc.jwk import ECKey, RSAKey

from signing import Reason, Signer, TrustStore, sign_jws, verify_jws
from signing.jws import b64url, b64url_decode

pytestmark = pytest.mark.req("AC-25")
CONTENT = b'{"resourceType":"Bundle","type":"document"}'


@pytest.mark.parametrize(("name", "alg"), [("doctor", "RS256"), ("doctor-ec", "ES256")])
async def test_jws_round_trip_verifies(
    trust: TrustStore, signer_for: Callable[[str], Signer], name: str, alg: str
) -> None:
    token = await sign_jws(CONTENT, signer_for(name))
    protected, payload, _ = token.split(".")
    assert payload == ""  # detached (RFC 7515 Appendix F)
    assert json.loads(b64url_decode(protected))["alg"] == alg
    status = await verify_jws(token, CONTENT, trust)
    assert status.ok, status.summary()
    assert status.algorithm == alg and status.signing_time is not None


@pytest.mark.parametrize("name", ["doctor", "doctor-ec"])
async def test_joserfc_verifies_our_jws_with_the_payload_attached(
    signer_for: Callable[[str], Signer], name: str
) -> None:
    signer = signer_for(name)
    protected, _, signature = (await sign_jws(CONTENT, signer)).split(".")
    pem = signer.signing_cert.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    key = (RSAKey if name == "doctor" else ECKey).import_key(pem)
    alg = "RS256" if name == "doctor" else "ES256"
    registry = joserfc_jws.JWSRegistry(
        algorithms=[alg], strict_check_header=False
    )  # sigT is JAdES, not RFC 7515
    registry.max_header_length = 8192  # x5c with two certificates exceeds joserfc's 512-byte default
    token = f"{protected}.{b64url(CONTENT)}.{signature}"
    result = joserfc_jws.deserialize_compact(token, key, algorithms=[alg], registry=registry)
    assert result.payload == CONTENT


async def test_any_changed_byte_of_the_content_fails(
    trust: TrustStore, signer_for: Callable[[str], Signer]
) -> None:
    token = await sign_jws(CONTENT, signer_for("doctor"))
    for i in range(0, len(CONTENT), 7):
        changed = CONTENT[:i] + bytes([CONTENT[i] ^ 0x01]) + CONTENT[i + 1 :]
        status = await verify_jws(token, changed, trust)
        assert not status.ok and not status.intact and Reason.SIGNATURE_MISMATCH in status.reasons


async def test_attached_payload_that_differs_from_the_content_is_a_digest_mismatch(
    trust: TrustStore, signer_for: Callable[[str], Signer]
) -> None:
    protected, _, signature = (await sign_jws(CONTENT, signer_for("doctor"))).split(".")
    token = f"{protected}.{b64url(b'other')}.{signature}"
    assert Reason.DIGEST_MISMATCH in (await verify_jws(token, CONTENT, trust)).reasons


async def test_jws_without_x5c_is_malformed(trust: TrustStore) -> None:
    header = b64url(json.dumps({"alg": "RS256"}).encode())
    status = await verify_jws(f"{header}..{b64url(b'sig')}", CONTENT, trust)
    assert status.reasons == (Reason.MALFORMED,) and "x5c" in status.findings[0].message


async def test_alg_that_does_not_fit_the_key_is_unsupported(
    trust: TrustStore, signer_for: Callable[[str], Signer]
) -> None:
    protected, _, signature = (await sign_jws(CONTENT, signer_for("doctor"))).split(".")
    header = json.loads(b64url_decode(protected))
    for alg in ("HS256", "none", "ES256"):
        forged = b64url(json.dumps({**header, "alg": alg}).encode())
        status = await verify_jws(f"{forged}..{signature}", CONTENT, trust)
        assert status.reasons == (Reason.UNSUPPORTED_ALGORITHM,), alg


async def test_garbage_is_malformed_not_an_exception(trust: TrustStore) -> None:
    for token in ("", "a.b", "!!!.x.y", base64.b64encode(b"{}").decode() + "..x"):
        assert (await verify_jws(token, CONTENT, trust)).reasons == (Reason.MALFORMED,)


async def test_auth_only_certificate_is_refused_for_jws(
    trust: TrustStore, signer_for: Callable[[str], Signer]
) -> None:
    status = await verify_jws(await sign_jws(CONTENT, signer_for("doctor-auth")), CONTENT, trust)
    assert status.intact and status.valid and status.reasons == (Reason.WRONG_KEY_USAGE,)
