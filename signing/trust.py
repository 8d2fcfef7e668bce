"""Certificate path validation to a configured trust store (RFC 5280 §6, simplified; see docs/signing.md).

The trust store holds the national CA roots (or the test PKI's roots), optional intermediates and CRLs.
A path is built from the signer's certificate through the certificates the signature carries and the
store's intermediates to a configured root; every issuer signature, validity period and revocation state
along the path is checked. Name constraints and policy mapping are not evaluated.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from signing import algorithms, gost
from signing.certificates import check_validity, describe, is_ca, load_certificates, name_text, utcnow
from signing.protocols import ExternalVerifier
from signing.revocation import RevocationPolicy, RevocationState, check_revocation
from signing.status import Finding, Reason

_MAX_DEPTH = 8
_CERT_SUFFIXES = {".pem", ".crt", ".cer", ".der"}
_CRL_SUFFIXES = {".crl"}


@dataclass(frozen=True, slots=True)
class ChainResult:
    """Outcome of validating one signer certificate."""

    trusted: bool
    revoked: bool
    path: tuple[x509.Certificate, ...]
    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = ()


def _load_crl(data: bytes) -> x509.CertificateRevocationList:
    if b"-----BEGIN X509 CRL-----" in data:
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)


def issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer``'s key signed ``child`` (RSA/ECDSA through cryptography, GOST 2015 through gost)."""
    if child.issuer != issuer.subject:
        return False
    oid = child.signature_algorithm_oid.dotted_string
    if oid in (gost.KZ_SIG_256, gost.KZ_SIG_512, gost.TC26_SIG_256, gost.TC26_SIG_512):
        digest_name = "streebog256" if oid in (gost.KZ_SIG_256, gost.TC26_SIG_256) else "streebog512"
        try:
            return algorithms.verify_raw(issuer, child.signature, child.tbs_certificate_bytes, digest_name)
        except algorithms.UnsupportedAlgorithmError:
            return False
    try:
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


@dataclass
class TrustStore:
    """Trust anchors, intermediates, CRLs and the revocation policy."""

    roots: list[x509.Certificate]
    intermediates: list[x509.Certificate] = field(default_factory=list)
    crls: list[x509.CertificateRevocationList] = field(default_factory=list)
    revocation: RevocationPolicy = field(default_factory=RevocationPolicy)
    http_client: httpx.AsyncClient | None = None
    external_verifier: ExternalVerifier | None = None  # GOST 34.310-2004 (signing.external_verifier)

    @classmethod
    def from_directory(cls, directory: str | Path, revocation: RevocationPolicy | None = None) -> TrustStore:
        """Load every certificate and CRL file in ``directory`` (not recursive).

        Self-signed CA certificates become trust anchors, other CA certificates intermediates; end-entity
        certificates and key files are ignored. CRLs are ``*.crl`` files (DER or PEM).
        """
        roots: list[x509.Certificate] = []
        intermediates: list[x509.Certificate] = []
        crls: list[x509.CertificateRevocationList] = []
        for path in sorted(Path(directory).iterdir()):
            suffix = path.suffix.lower()
            if suffix in _CRL_SUFFIXES:
                crls.append(_load_crl(path.read_bytes()))
            elif suffix in _CERT_SUFFIXES and b"PRIVATE KEY" not in path.read_bytes():
                for cert in load_certificates(path.read_bytes()):
                    if is_ca(cert):
                        (roots if cert.subject == cert.issuer else intermediates).append(cert)
        return cls(roots, intermediates, crls, revocation or RevocationPolicy())

    def _candidates(self, extra: Iterable[x509.Certificate]) -> list[x509.Certificate]:
        return [*extra, *self.intermediates, *self.roots]

    def build_path(
        self, cert: x509.Certificate, extra: Sequence[x509.Certificate] = ()
    ) -> tuple[x509.Certificate, ...] | None:
        """Depth-first search for a path ending at a trust anchor; ``None`` when there is none."""
        pool = self._candidates(extra)

        def extend(path: list[x509.Certificate]) -> list[x509.Certificate] | None:
            current = path[-1]
            if current in self.roots:
                return path
            if len(path) > _MAX_DEPTH:
                return None
            for candidate in pool:
                if candidate in path or not (candidate in self.roots or is_ca(candidate)):
                    continue
                if issued_by(current, candidate) and (found := extend([*path, candidate])):
                    return found
            return None

        found = extend([cert])
        return tuple(found) if found else None

    async def validate(
        self, cert: x509.Certificate, extra: Sequence[x509.Certificate] = (), at: datetime | None = None
    ) -> ChainResult:
        """Validate the signer's certificate at ``at`` (default: now)."""
        when = at or utcnow()
        path = self.build_path(cert, extra)
        if path is None:
            message = (
                f"no path from {describe(cert)} to any of {len(self.roots)} configured trust anchor(s); "
                f"issuer {name_text(cert.issuer)} is unknown or its signature does not verify"
            )
            return ChainResult(False, False, (cert,), (Finding(Reason.UNTRUSTED_CHAIN, message),))
        findings = [f for c in path for f in check_validity(c, when)]
        revoked, notes, rev_findings = await self._check_path_revocation(path, when)
        all_findings = (*findings, *rev_findings)
        return ChainResult(not all_findings and not revoked, revoked, path, all_findings, notes)

    async def _check_path_revocation(
        self, path: tuple[x509.Certificate, ...], when: datetime
    ) -> tuple[bool, tuple[str, ...], list[Finding]]:
        if self.revocation.mode == "off":
            return False, ("revocation not checked (policy off)",), []
        notes: list[str] = []
        findings: list[Finding] = []
        for child, issuer in itertools.pairwise(path):
            result = await check_revocation(child, issuer, self.crls, self.revocation, when, self.http_client)
            if result.state is RevocationState.REVOKED:
                return True, tuple(notes), [Finding(Reason.REVOKED, result.message)]
            if result.state is RevocationState.UNKNOWN:
                if self.revocation.mode == "hard":
                    findings.append(Finding(Reason.REVOCATION_UNKNOWN, result.message))
                else:
                    notes.append(result.message)
        return False, tuple(notes), findings
