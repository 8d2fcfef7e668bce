"""JWS with detached payload (RFC 7515 Appendix F) for ``Signature.sigFormat = application/jose``.

The payload is the canonical JSON of the signed resource (R4 §2.6.2.6), left out of the compact form; the
verifier recomputes it. The protected header carries the signer's certificate chain (``x5c``) and the
claimed signing time (``sigT``, as ETSI JAdES names it).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from signing import algorithms
from signing.algorithms import KeyKind, UnsupportedAlgorithmError
from signing.certificates import load_der
from signing.protocols import Signer
from signing.status import Finding, Reason, VerificationStatus, failed
from signing.trust import TrustStore
from signing.verification import CryptoResult, Expectations, finish

FORMAT = "jws"
MEDIA_TYPE = "application/jose"
_ALG_KINDS = {"RS256": (KeyKind.RSA,), "ES256": (KeyKind.EC_P256,), "ES384": (KeyKind.EC_P384,)}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def sign_detached(content: bytes, signer: Signer, signing_time: datetime | None = None) -> str:
    """Compact JWS ``header..signature`` over ``content``."""
    cert = signer.signing_cert
    names = algorithms.names_for(cert)
    if names.jws is None:
        raise UnsupportedAlgorithmError(f"JWS has no algorithm for {algorithms.key_kind(cert).value} keys")
    when = (signing_time or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    header = {
        "alg": names.jws,
        "sigT": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x5c": [base64.b64encode(c.public_bytes(Encoding.DER)).decode() for c in (cert, *signer.cert_chain)],
    }
    protected = b64url(json.dumps(header, separators=(",", ":")).encode())
    signing_input = f"{protected}.{b64url(content)}".encode("ascii")
    signature = await signer.sign_raw(signing_input, names.digest)
    if names.jws.startswith("ES"):
        signature = algorithms.ecdsa_der_to_raw(signature, cert)
    return f"{protected}..{b64url(signature)}"


def _parse(token: str) -> tuple[dict[str, Any], str, str, bytes, list[x509.Certificate]]:
    protected, payload, signature = token.strip().split(".")
    header = json.loads(b64url_decode(protected))
    if not isinstance(header, dict):
        raise ValueError("JWS header is not a JSON object")
    chain = [load_der(base64.b64decode(c)) for c in header.get("x5c", [])]
    return header, protected, payload, b64url_decode(signature), chain


def _signing_time(header: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(header["sigT"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None


async def verify_detached(
    token: str, content: bytes, trust: TrustStore | None, expect: Expectations | None = None
) -> VerificationStatus:
    """Verify a detached (or attached, if its payload equals ``content``) compact JWS."""
    try:
        header, protected, payload, signature, chain = _parse(token)
    except (ValueError, TypeError, binascii.Error) as exc:
        return failed(FORMAT, Reason.MALFORMED, f"not a compact JWS with a valid header and x5c: {exc}")
    if not chain:
        return failed(FORMAT, Reason.MALFORMED, "JWS header has no x5c certificate chain")
    alg, cert = header.get("alg"), chain[0]
    try:
        kind = algorithms.key_kind(cert)
    except UnsupportedAlgorithmError as exc:
        return failed(FORMAT, Reason.UNSUPPORTED_ALGORITHM, str(exc))
    if alg not in _ALG_KINDS or kind not in _ALG_KINDS[alg]:
        return failed(
            FORMAT,
            Reason.UNSUPPORTED_ALGORITHM,
            f"JWS alg {alg!r} is not supported with a {kind.value} key (RS256, ES256, ES384 are)",
        )
    crypto = _check(protected, payload, signature, content, cert, str(alg))
    crypto = CryptoResult(crypto.intact, crypto.valid, crypto.findings, _signing_time(header), str(alg))
    return await finish(FORMAT, cert, chain[1:], crypto, trust, expect)


def _check(
    protected: str, payload: str, signature: bytes, content: bytes, cert: x509.Certificate, alg: str
) -> CryptoResult:
    if payload and payload != b64url(content):
        return CryptoResult(
            False,
            False,
            (Finding(Reason.DIGEST_MISMATCH, "the JWS carries a payload that differs from the content"),),
        )
    signing_input = f"{protected}.{b64url(content)}".encode("ascii")
    if alg.startswith("ES"):
        signature = algorithms.ecdsa_raw_to_der(signature)
    digest = algorithms.NAMES[algorithms.key_kind(cert)].digest
    if algorithms.verify_raw(cert, signature, signing_input, digest):
        return CryptoResult(True, True)
    return CryptoResult(
        False,
        False,
        (
            Finding(
                Reason.SIGNATURE_MISMATCH,
                "the JWS signature does not verify over the canonical content: the content changed after "
                "signing or the signature is corrupt",
            ),
        ),
    )
