"""GOST R 34.10-2012 / 34.11-2012 (Kazakhstan's "GOST 2015" algorithms) through ``gostcrypto``.

Kazakhstan's NCA issues GOST R 34.10-2015 keys under its own OIDs (kz-domain §5.2); the curves are the
TC26 parameter sets A (256 and 512 bit). Byte conventions follow RFC 4491 / RFC 9215: the public key is an
OCTET STRING of little-endian X || Y, the digest is read as a little-endian integer and the signature value is
``s || r`` big-endian. Whether NCA's KalkanCrypt uses exactly these conventions could not be checked against
an official sample, so interoperability with real NCA GOST signatures is unproven (docs/signing.md).
GOST 34.310-2004 (the older Kazakh GOST) is not computed here: see :mod:`signing.external_verifier`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from asn1crypto import core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization

try:  # optional dependency: without it GOST 2015 signatures are reported as unsupported
    from gostcrypto import gosthash, gostsignature
except ImportError:  # pragma: no cover - exercised only where gostcrypto is not installed
    gosthash = gostsignature = None

# Kazakh OIDs (kz-domain §5.2) and the equivalent TC26 OIDs (RFC 9215).
KZ_KEY_256, KZ_KEY_512 = "1.2.398.3.10.1.1.2.1", "1.2.398.3.10.1.1.2.2"
KZ_SIG_256, KZ_SIG_512 = "1.2.398.3.10.1.1.2.3.1", "1.2.398.3.10.1.1.2.3.2"
KZ_DIGEST_256, KZ_DIGEST_512 = "1.2.398.3.10.1.3.2", "1.2.398.3.10.1.3.3"
KZ_CURVE_256, KZ_CURVE_512 = "1.2.398.3.10.1.1.2.1.1", "1.2.398.3.10.1.1.2.2.1"
TC26_KEY_256, TC26_KEY_512 = "1.2.643.7.1.1.1.1", "1.2.643.7.1.1.1.2"
TC26_SIG_256, TC26_SIG_512 = "1.2.643.7.1.1.3.2", "1.2.643.7.1.1.3.3"
TC26_DIGEST_256, TC26_DIGEST_512 = "1.2.643.7.1.1.2.2", "1.2.643.7.1.1.2.3"
# GOST 34.310-2004 with GOST 34.311-95: only an external verifier can check these.
KZ_GOST34310_KEY, KZ_GOST34310_SIG, KZ_GOST34311_DIGEST = (
    "1.2.398.3.10.1.1.1.1",
    "1.2.398.3.10.1.1.1.2",
    "1.2.398.3.10.1.3.1",
)

KEY_BITS = {KZ_KEY_256: 256, TC26_KEY_256: 256, KZ_KEY_512: 512, TC26_KEY_512: 512}
DIGEST_NAMES = {
    KZ_DIGEST_256: "streebog256",
    TC26_DIGEST_256: "streebog256",
    KZ_DIGEST_512: "streebog512",
    TC26_DIGEST_512: "streebog512",
}
_CURVES = {256: "id-tc26-gost-3410-2012-256-paramSetA", 512: "id-tc26-gost-3410-12-512-paramSetA"}


class GostUnavailableError(Exception):
    """``gostcrypto`` is not installed."""


def available() -> bool:
    return gostsignature is not None


def _require() -> None:
    if gostsignature is None:
        raise GostUnavailableError("GOST R 34.10-2012 needs the 'gostcrypto' package")


def streebog(data: bytes, bits: int) -> bytes:
    """GOST R 34.11-2012 digest, bytes in the order the standard's test vectors print them."""
    _require()
    return bytes(gosthash.new(f"streebog{bits}", data=data).digest())


def _engine(bits: int) -> Any:
    mode = gostsignature.MODE_256 if bits == 256 else gostsignature.MODE_512
    return gostsignature.new(mode, gostsignature.CURVES_R_1323565_1_024_2019[_CURVES[bits]])


def _to_integer_order(digest: bytes) -> bytearray:
    # RFC 4491 §2.2.1: the hash value is interpreted as a little-endian integer; gostcrypto reads big-endian.
    return bytearray(digest[::-1])


def verify_digest(public_key_le: bytes, digest: bytes, signature: bytes) -> bool:
    """Verify ``s || r`` over a Streebog digest with a little-endian ``X || Y`` public key."""
    _require()
    half = len(public_key_le) // 2
    bits = half * 8
    if len(signature) != len(public_key_le) or len(digest) != half:
        return False
    pub = bytearray(public_key_le[:half][::-1] + public_key_le[half:][::-1])
    r_s = bytearray(signature[half:] + signature[:half])
    try:
        return bool(_engine(bits).verify(pub, _to_integer_order(digest), r_s))
    except gostsignature.GOSTSignatureError:
        return False


def public_key_from_cert(cert: x509.Certificate) -> tuple[int, bytes]:
    """(bits, little-endian X || Y) from a GOST 2012 certificate's SubjectPublicKeyInfo."""
    parsed = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    spki = _Spki.load(parsed["tbs_certificate"]["subject_public_key_info"].dump())
    bits = KEY_BITS[spki["algorithm"]["algorithm"].dotted]
    inner = core.OctetString.load(spki["public_key"].cast(core.OctetBitString).native)
    return bits, bytes(inner.native)


class _AlgorithmId(core.Sequence):
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("algorithm", core.ObjectIdentifier),
        ("parameters", core.Any, {"optional": True}),
    ]


class _Spki(core.Sequence):
    _fields: ClassVar[list[tuple[Any, ...]]] = [("algorithm", _AlgorithmId), ("public_key", core.BitString)]


def spki_der(bits: int, public_key_le: bytes) -> bytes:
    """SubjectPublicKeyInfo for a Kazakh GOST 2015 key (parameters: curve OID, digest OID)."""
    params = core.Sequence(
        contents=core.ObjectIdentifier(KZ_CURVE_256 if bits == 256 else KZ_CURVE_512).dump()
        + core.ObjectIdentifier(KZ_DIGEST_256 if bits == 256 else KZ_DIGEST_512).dump()
    )
    key_bits = core.OctetString(public_key_le).dump()
    return _Spki(
        {
            "algorithm": {"algorithm": KZ_KEY_256 if bits == 256 else KZ_KEY_512, "parameters": params},
            "public_key": core.OctetBitString(key_bits).cast(core.BitString),
        }
    ).dump()


@dataclass(frozen=True, slots=True)
class GostKeyPair:
    bits: int
    private_key: bytes  # big-endian scalar
    public_key_le: bytes


def generate_key(bits: int = 256) -> GostKeyPair:
    _require()
    engine = _engine(bits)
    size = bits // 8
    while True:
        scalar = os.urandom(size)
        if 0 < int.from_bytes(scalar, "big") < engine._q:
            break
    pub = bytes(engine.public_key_generate(bytearray(scalar)))
    half = len(pub) // 2
    return GostKeyPair(bits, scalar, pub[:half][::-1] + pub[half:][::-1])


def sign_digest(key: GostKeyPair, digest: bytes) -> bytes:
    """``s || r`` over a Streebog digest (RFC 4491 conventions)."""
    _require()
    r_s = bytes(_engine(key.bits).sign(bytearray(key.private_key), _to_integer_order(digest)))
    half = len(r_s) // 2
    return r_s[half:] + r_s[:half]


class GostSigner:
    """Software key backend for GOST R 34.10-2012 keys (test PKI and pure-software deployments)."""

    def __init__(self, key: GostKeyPair, cert: x509.Certificate, chain: Sequence[x509.Certificate] = ()):
        self._key, self._cert, self._chain = key, cert, tuple(chain)

    @property
    def signing_cert(self) -> x509.Certificate:
        return self._cert

    @property
    def cert_chain(self) -> Sequence[x509.Certificate]:
        return self._chain

    async def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        bits = 256 if digest_algorithm == "streebog256" else 512
        if digest_algorithm not in ("streebog256", "streebog512") or bits != self._key.bits:
            raise ValueError(
                f"a GOST {self._key.bits}-bit key signs with streebog{self._key.bits}, not {digest_algorithm}"
            )
        # Pure-Python curve arithmetic takes tens of ms: keep it off the event loop (house style §10).
        return await asyncio.to_thread(lambda: sign_digest(self._key, streebog(data, bits)))


def private_key_der(key: GostKeyPair) -> bytes:
    """PKCS#8-shaped encoding of a GOST key (little-endian scalar, as RFC 9215 §5 stores it)."""
    algorithm = _AlgorithmId({"algorithm": KZ_KEY_256 if key.bits == 256 else KZ_KEY_512})
    body = (
        core.Integer(0).dump()
        + algorithm.dump()
        + core.OctetString(core.OctetString(key.private_key[::-1]).dump()).dump()
    )
    return core.Sequence(contents=body).dump()


def load_private_key(der: bytes) -> GostKeyPair | None:
    """Inverse of :func:`private_key_der`; ``None`` when ``der`` is not a GOST 2015 key."""
    try:
        seq = core.Sequence.load(der)
        algorithm = _AlgorithmId.load(seq[1].dump())
        oid = algorithm["algorithm"].dotted
        if oid not in KEY_BITS:
            return None
        scalar = bytes(core.OctetString.load(seq[2].cast(core.OctetString).native).native)[::-1]
    except (ValueError, TypeError, IndexError, KeyError):
        return None
    _require()
    bits = KEY_BITS[oid]
    pub = bytes(_engine(bits).public_key_generate(bytearray(scalar)))
    half = len(pub) // 2
    return GostKeyPair(bits, scalar, pub[:half][::-1] + pub[half:][::-1])
