"""Software key backend: a private key from a PEM or PKCS#12 file (house style §11).

Meant for the test PKI, demos and service accounts. Doctors sign with their own token through NCALayer;
the server never holds their keys.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, pkcs12

from signing import gost
from signing.certificates import load_certificates, name_text
from signing.errors import SigningError
from signing.protocols import Signer

_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class SoftwareSigner:
    """RSA or ECDSA private key held in memory."""

    def __init__(self, key: PrivateKey, cert: x509.Certificate, chain: Sequence[x509.Certificate] = ()):
        public = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        if public != cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo):
            raise SigningError(f"the private key does not belong to certificate {name_text(cert.subject)}")
        self._key, self._cert, self._chain = key, cert, tuple(chain)

    @property
    def signing_cert(self) -> x509.Certificate:
        return self._cert

    @property
    def cert_chain(self) -> Sequence[x509.Certificate]:
        return self._chain

    async def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        if digest_algorithm not in _HASHES:
            raise SigningError(f"digest {digest_algorithm} is not supported for software keys")
        algorithm = _HASHES[digest_algorithm]
        key = self._key
        # CPU-bound work stays off the event loop (house style §10).
        if isinstance(key, rsa.RSAPrivateKey):
            return await asyncio.to_thread(key.sign, data, padding.PKCS1v15(), algorithm)
        return await asyncio.to_thread(key.sign, data, ec.ECDSA(algorithm))


def _read_pkcs12(data: bytes, password: bytes | None) -> tuple[object, x509.Certificate | None, list]:
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, password)
    except ValueError as exc:
        raise SigningError(f"cannot open PKCS#12 file (wrong password?): {exc}") from exc
    return key, cert, list(extra)


def _read_pem_key(data: bytes, password: bytes | None) -> object:
    try:
        return serialization.load_pem_private_key(data, password)
    except (UnsupportedAlgorithm, ValueError, TypeError) as exc:
        # not an RSA/EC key cryptography can read: it may still be a GOST key, tried below
        if not isinstance(exc, UnsupportedAlgorithm) and b"PRIVATE KEY" not in data:
            raise SigningError("the key file holds no PEM private key") from exc
    gost_key = gost.load_private_key(_pem_body(data))
    if gost_key is None:
        raise SigningError("the key file holds an unsupported or encrypted private key")
    return gost_key


def _pem_body(data: bytes) -> bytes:
    import base64

    lines = [ln for ln in data.decode("ascii", "replace").splitlines() if ln and not ln.startswith("-----")]
    return base64.b64decode("".join(lines))


def load_signer(
    key_path: str | Path,
    cert_path: str | Path | None = None,
    *,
    password: str | None = None,
    chain_paths: Sequence[str | Path] = (),
) -> Signer:
    """Open a key file (PEM private key or PKCS#12 ``.p12``/``.pfx``) as a :class:`Signer`.

    For PKCS#12 the certificate and chain come from the file unless ``cert_path`` is given. For PEM keys the
    certificate file may also hold the chain after the signer's certificate.
    """
    raw = Path(key_path).read_bytes()
    pw = password.encode() if password is not None else None
    certs: list[x509.Certificate] = []
    if raw.lstrip().startswith(b"-----"):
        key = _read_pem_key(raw, pw)
    else:
        key, p12_cert, certs = _read_pkcs12(raw, pw)
        if p12_cert is not None:
            certs.insert(0, p12_cert)
    if cert_path is not None:
        certs = load_certificates(Path(cert_path).read_bytes())
    for extra in chain_paths:
        certs.extend(load_certificates(Path(extra).read_bytes()))
    if not certs:
        raise SigningError("no signer certificate: pass --cert or use a PKCS#12 file that contains one")
    if isinstance(key, gost.GostKeyPair):
        return gost.GostSigner(key, certs[0], certs[1:])
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise SigningError(f"unsupported private key type {type(key).__name__}")
    return SoftwareSigner(key, certs[0], certs[1:])
