"""GOST 34.310-2004 through an external verifier service configured by URL.

No maintained library computes GOST 34.310-2004 / GOST 34.311-95 (kz-domain §5.3), so such signatures are
sent to a service built on NCA's KalkanCrypt (an NCANode sidecar behind a small adapter, for instance).
Wire contract, one JSON POST to the configured URL::

    request:  {"format": "cms" | "xml", "signature": "<base64>", "data": "<base64>" | null}
    response: {"valid": bool, "trusted": bool, "revoked": bool, "message": str,
               "signerCertificate": "<base64 DER>" | null}

The service decides signature validity, chain and revocation; this package still checks the signer
certificate's validity period, key usage and IIN/BIN itself so the reasons stay uniform.
"""

from __future__ import annotations

import base64
from datetime import datetime

import httpx
from cryptography import x509

from signing.certificates import check_signing_usage, check_validity, load_der, name_text, to_pem, utcnow
from signing.identity import check_identity, identity_of
from signing.protocols import ExternalFormat, ExternalVerdict, ExternalVerifier, ExternalVerifierError
from signing.status import Finding, Reason, VerificationStatus, failed
from signing.verification import Expectations

ALGORITHM = "GOST-34.310-2004"


class HttpExternalVerifier:
    """:class:`ExternalVerifier` speaking the JSON contract above over HTTP(S)."""

    def __init__(self, url: str, *, timeout: float = 10.0, client: httpx.AsyncClient | None = None):
        self.url, self.timeout, self._client = url, timeout, client

    async def verify(self, fmt: ExternalFormat, signature: bytes, content: bytes | None) -> ExternalVerdict:
        payload = {
            "format": fmt,
            "signature": base64.b64encode(signature).decode(),
            "data": base64.b64encode(content).decode() if content is not None else None,
        }
        try:
            if self._client is not None:
                response = await self._client.post(self.url, json=payload, timeout=self.timeout)
            else:
                async with httpx.AsyncClient() as client:
                    response = await client.post(self.url, json=payload, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise ExternalVerifierError(f"external verifier {self.url} unreachable: {exc!r}") from exc
        if response.status_code != 200:
            raise ExternalVerifierError(f"external verifier {self.url} answered HTTP {response.status_code}")
        return _parse_verdict(response, self.url)


def _parse_verdict(response: httpx.Response, url: str) -> ExternalVerdict:
    try:
        body = response.json()
        cert_b64 = body.get("signerCertificate")
        cert_der = base64.b64decode(cert_b64) if cert_b64 else None
        if cert_der is not None:
            load_der(cert_der)  # refuse an unparsable certificate here, as an unusable answer
        if not all(isinstance(body.get(k, False), bool) for k in ("valid", "trusted", "revoked")):
            raise ValueError("valid/trusted/revoked must be booleans")
        return ExternalVerdict(
            valid=body["valid"],
            trusted=body["trusted"],
            revoked=body.get("revoked", False),
            message=str(body.get("message", "")),
            signer_certificate_der=cert_der,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ExternalVerifierError(f"external verifier {url} sent an unusable answer: {exc}") from exc


def _verdict_findings(verdict: ExternalVerdict) -> list[Finding]:
    said = f" (verifier: {verdict.message})" if verdict.message else ""
    findings = []
    if not verdict.valid:
        findings.append(
            Finding(Reason.SIGNATURE_MISMATCH, f"the external verifier rejected the signature{said}")
        )
    if verdict.revoked:
        findings.append(
            Finding(Reason.REVOKED, f"the external verifier reports the certificate revoked{said}")
        )
    elif not verdict.trusted:
        findings.append(
            Finding(Reason.UNTRUSTED_CHAIN, f"the external verifier does not trust the chain{said}")
        )
    return findings


async def verify_externally(
    fmt: ExternalFormat,
    signature: bytes,
    content: bytes | None,
    cert: x509.Certificate,
    verifier: ExternalVerifier | None,
    expect: Expectations | None,
    status_format: str,
) -> VerificationStatus:
    """Ask the external verifier, then apply the local certificate checks."""
    expect = expect or Expectations()
    if verifier is None:
        return failed(
            status_format,
            Reason.UNSUPPORTED_ALGORITHM,
            "GOST 34.310-2004 signatures need an external verifier; none is configured",
            signer_subject=name_text(cert.subject),
            algorithm=ALGORITHM,
        )
    try:
        verdict = await verifier.verify(fmt, signature, content)
    except ExternalVerifierError as exc:
        return failed(
            status_format,
            Reason.VERIFIER_UNAVAILABLE,
            str(exc),
            algorithm=ALGORITHM,
            signer_subject=name_text(cert.subject),
        )
    if verdict.signer_certificate_der:
        cert = load_der(verdict.signer_certificate_der)
    return _status(verdict, cert, expect, status_format)


def _status(
    verdict: ExternalVerdict, cert: x509.Certificate, expect: Expectations, status_format: str
) -> VerificationStatus:
    """The service's verdict plus the local checks on the signer's certificate."""
    identity = identity_of(cert)
    at: datetime = expect.at or utcnow()
    findings = [
        *_verdict_findings(verdict),
        *check_signing_usage(cert),
        *check_validity(cert, at),
        *check_identity(identity, expect.iin, expect.bin),
    ]
    return VerificationStatus(
        format=status_format,
        intact=verdict.valid,
        valid=verdict.valid,
        trusted=verdict.trusted and not check_validity(cert, at),
        revoked=verdict.revoked,
        findings=tuple(findings),
        signer_subject=name_text(cert.subject),
        iin=identity.iin,
        bin=identity.bin,
        algorithm=ALGORITHM,
        certificate_pem=to_pem(cert),
        notes=("signature, chain and revocation checked by the external verifier",),
    )
