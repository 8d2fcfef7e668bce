"""The seams of the signing package (house style §11, after pyHanko's ``Signer``).

A key backend implements one async primitive, :meth:`Signer.sign_raw`; every format (JWS, CMS/CAdES,
XMLDSig, PAdES) is built on top of it, so a smart card, an HSM or NCALayer-like remote signer only has to
implement this protocol. The server never holds a doctor's private key: it only verifies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from cryptography import x509


@runtime_checkable
class Signer(Protocol):
    """A private key with its certificate."""

    @property
    def signing_cert(self) -> x509.Certificate:
        """The signer's certificate (embedded in every signature)."""
        ...

    @property
    def cert_chain(self) -> Sequence[x509.Certificate]:
        """Intermediate certificates to embed so verifiers can build the path (may be empty)."""
        ...

    async def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        """Sign ``data`` hashed with ``digest_algorithm`` (``sha256``, ``streebog256`` ...).

        Returns the signature value as CMS carries it: PKCS#1 v1.5 for RSA, DER ``Ecdsa-Sig-Value`` for
        ECDSA, ``s || r`` (RFC 4491 §2.2.2) for GOST R 34.10. Formats convert where their rules differ.
        """
        ...


ExternalFormat = Literal["cms", "xml"]


@dataclass(frozen=True, slots=True)
class ExternalVerdict:
    """What an external verifier (a KalkanCrypt/NCANode-like service) says about one signature."""

    valid: bool
    trusted: bool
    revoked: bool = False
    message: str = ""
    signer_certificate_der: bytes | None = None


class ExternalVerifierError(Exception):
    """The external verifier could not be reached or answered something unusable."""


class ExternalVerifier(Protocol):
    """Verifies signatures in algorithms this package cannot compute itself (GOST 34.310-2004).

    The service is authoritative for the signature value, the chain and revocation; the package still checks
    the returned signer certificate's validity period, key usage and IIN/BIN locally.
    """

    async def verify(self, fmt: ExternalFormat, signature: bytes, content: bytes | None) -> ExternalVerdict:
        """``signature`` is DER CMS (``content`` its detached data) or a signed XML document."""
        ...
