"""Which keys and algorithms the package signs and verifies with, and their names in each format.

Supported: RSA >= 2048 bit with SHA-256 (PKCS#1 v1.5, as NCA's RSA certificates use), ECDSA P-256 / P-384
with SHA-256 / SHA-384, GOST R 34.10-2012 256/512 with Streebog (via :mod:`signing.gost`). GOST 34.310-2004 is
recognised only to hand it to an external verifier. Everything else is reported as unsupported.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from signing import gost

MIN_RSA_BITS = 2048


class KeyKind(StrEnum):
    RSA = "RSA"
    EC_P256 = "ECDSA-P256"
    EC_P384 = "ECDSA-P384"
    GOST2015_256 = "GOST-R-34.10-2015-256"
    GOST2015_512 = "GOST-R-34.10-2015-512"
    GOST34310 = "GOST-34.310-2004"


class UnsupportedAlgorithmError(Exception):
    """The key or algorithm is outside what this package supports; the message names it."""


@dataclass(frozen=True, slots=True)
class AlgorithmNames:
    digest: str  # hashlib-style name used by Signer.sign_raw
    jws: str | None  # RFC 7518 "alg"
    xml_signature: str | None  # XMLDSig SignatureMethod URI
    xml_digest: str | None  # XMLDSig DigestMethod URI
    cms_signature: str  # signature algorithm OID for SignerInfo
    cms_digest: str  # digest algorithm OID


_XML = "http://www.w3.org/2001/04/xmldsig-more#"
_XMLENC = "http://www.w3.org/2001/04/xmlenc#"
NAMES: dict[KeyKind, AlgorithmNames] = {
    KeyKind.RSA: AlgorithmNames(
        "sha256",
        "RS256",
        _XML + "rsa-sha256",
        _XMLENC + "sha256",
        "1.2.840.113549.1.1.11",
        "2.16.840.1.101.3.4.2.1",
    ),
    KeyKind.EC_P256: AlgorithmNames(
        "sha256",
        "ES256",
        _XML + "ecdsa-sha256",
        _XMLENC + "sha256",
        "1.2.840.10045.4.3.2",
        "2.16.840.1.101.3.4.2.1",
    ),
    KeyKind.EC_P384: AlgorithmNames(
        "sha384",
        "ES384",
        _XML + "ecdsa-sha384",
        _XML + "sha384",
        "1.2.840.10045.4.3.3",
        "2.16.840.1.101.3.4.2.2",
    ),
    KeyKind.GOST2015_256: AlgorithmNames(
        "streebog256", None, None, None, gost.KZ_SIG_256, gost.KZ_DIGEST_256
    ),
    KeyKind.GOST2015_512: AlgorithmNames(
        "streebog512", None, None, None, gost.KZ_SIG_512, gost.KZ_DIGEST_512
    ),
}

DIGEST_OID_NAMES = {
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
    **gost.DIGEST_NAMES,
}
_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}


def key_kind(cert: x509.Certificate) -> KeyKind:
    """Classify the certificate's key, refusing weak or unknown keys."""
    oid = cert.public_key_algorithm_oid.dotted_string
    if oid in gost.KEY_BITS:
        return KeyKind.GOST2015_256 if gost.KEY_BITS[oid] == 256 else KeyKind.GOST2015_512
    if oid == gost.KZ_GOST34310_KEY:
        return KeyKind.GOST34310
    try:
        key = cert.public_key()
    except Exception as exc:  # cryptography raises several types for unknown keys
        raise UnsupportedAlgorithmError(f"public key algorithm {oid} is not supported") from exc
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise UnsupportedAlgorithmError(
                f"RSA key of {key.key_size} bits; at least {MIN_RSA_BITS} required"
            )
        return KeyKind.RSA
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in ("secp256r1", "secp384r1"):
        return KeyKind.EC_P256 if key.curve.name == "secp256r1" else KeyKind.EC_P384
    raise UnsupportedAlgorithmError(f"public key type {type(key).__name__} ({oid}) is not supported")


def names_for(cert: x509.Certificate) -> AlgorithmNames:
    kind = key_kind(cert)
    if kind not in NAMES:
        raise UnsupportedAlgorithmError(f"{kind.value} signatures cannot be created by this package")
    return NAMES[kind]


def digest(data: bytes, algorithm: str) -> bytes:
    if algorithm in ("streebog256", "streebog512"):
        try:
            return gost.streebog(data, int(algorithm[-3:]))
        except gost.GostUnavailableError as exc:
            raise UnsupportedAlgorithmError(str(exc)) from exc
    if algorithm not in _HASHES:
        raise UnsupportedAlgorithmError(f"digest algorithm {algorithm} is not supported")
    return hashlib.new(algorithm, data).digest()


def verify_raw(cert: x509.Certificate, signature: bytes, data: bytes, digest_algorithm: str) -> bool:
    """Check a CMS-style signature value (see :meth:`signing.protocols.Signer.sign_raw`) over ``data``."""
    kind = key_kind(cert)
    if kind is KeyKind.GOST34310:
        raise UnsupportedAlgorithmError("GOST 34.310-2004 needs the configured external verifier")
    if kind in (KeyKind.GOST2015_256, KeyKind.GOST2015_512):
        if not gost.available():
            raise UnsupportedAlgorithmError("GOST R 34.10-2015 needs the 'gostcrypto' package")
        _, public = gost.public_key_from_cert(cert)
        return gost.verify_digest(public, digest(data, digest_algorithm), signature)
    if digest_algorithm not in _HASHES:
        raise UnsupportedAlgorithmError(f"digest {digest_algorithm} with a {kind.value} key is not supported")
    key = cert.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), _HASHES[digest_algorithm])
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(_HASHES[digest_algorithm]))
        else:
            return False
    except InvalidSignature:
        return False
    return True


def ecdsa_der_to_raw(signature: bytes, cert: x509.Certificate) -> bytes:
    """DER Ecdsa-Sig-Value -> fixed-size r || s (JWS RFC 7518 §3.4, XMLDSig 1.1 §6.4.3)."""
    size = (cert.public_key().curve.key_size + 7) // 8  # type: ignore[union-attr]
    r, s = decode_dss_signature(signature)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def ecdsa_raw_to_der(signature: bytes) -> bytes:
    half = len(signature) // 2
    return encode_dss_signature(
        int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
    )
