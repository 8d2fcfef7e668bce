"""Revocation: CRL files and OCSP over HTTP (RFC 5280 §6.3, RFC 6960).

NCA RK publishes full and delta CRLs and an OCSP responder (kz-domain §5.1). Deployments configure either:
local CRL files refreshed by an operator job, or an OCSP URL (httpx, POST ``application/ocsp-request``).
The policy decides what an unanswerable question means: ``off`` skips the check, ``soft`` notes it, ``hard``
refuses the signature with ``revocation-unknown``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from signing.algorithms import UnsupportedAlgorithmError, verify_raw
from signing.certificates import describe, name_text

RevocationMode = Literal["off", "soft", "hard"]
_CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class RevocationPolicy:
    mode: RevocationMode = "soft"
    ocsp_url: str | None = None  # a fixed responder, e.g. NCA's or a local proxy
    use_aia_ocsp: bool = False  # ask the responder named in the certificate's AIA extension
    timeout: float = 5.0


class RevocationState(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class RevocationResult:
    state: RevocationState
    message: str


def _crl_reason(entry: x509.RevokedCertificate) -> str:
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.name
    except x509.ExtensionNotFound:
        return "unspecified"


def check_crls(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    crls: Sequence[x509.CertificateRevocationList],
    at: datetime,
) -> RevocationResult:
    """Answer from the CRLs issued by ``issuer`` (signature-checked, not stale)."""
    stale = False
    for crl in crls:
        if crl.issuer != issuer.subject or not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
            continue
        next_update = crl.next_update_utc
        if next_update is not None and next_update + _CLOCK_SKEW < at:
            stale = True
            continue
        entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        if entry is not None and entry.revocation_date_utc <= at + _CLOCK_SKEW:
            return RevocationResult(
                RevocationState.REVOKED,
                f"{describe(cert)} was revoked on {entry.revocation_date_utc.isoformat()} "
                f"(reason {_crl_reason(entry)}) according to the CRL of "
                f"{name_text(issuer.subject)}",
            )
        return RevocationResult(RevocationState.GOOD, "not on the issuer's CRL")
    why = "only an expired CRL" if stale else "no CRL"
    return RevocationResult(
        RevocationState.UNKNOWN,
        f"{why} from {name_text(issuer.subject)} is configured for {describe(cert)}",
    )


def _aia_ocsp_url(cert: x509.Certificate) -> str | None:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return None
    for desc in aia:
        if desc.access_method == AuthorityInformationAccessOID.OCSP:
            return str(desc.access_location.value)
    return None


def _delegated(responder: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        responder.verify_directly_issued_by(issuer)
        eku = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    return ExtendedKeyUsageOID.OCSP_SIGNING in eku


def _responder_ok(response: ocsp.OCSPResponse, issuer: x509.Certificate) -> bool:
    """Signed by the issuer or by a responder the issuer delegated (RFC 6960 §4.2.2.2)."""
    hash_alg = response.signature_hash_algorithm
    if hash_alg is None:
        return False
    for responder in [issuer, *response.certificates]:
        if responder != issuer and not _delegated(responder, issuer):
            continue
        try:
            if verify_raw(responder, response.signature, response.tbs_response_bytes, hash_alg.name):
                return True
        except UnsupportedAlgorithmError:
            continue
    return False


def _interpret_ocsp(
    body: bytes, cert: x509.Certificate, issuer: x509.Certificate, at: datetime, url: str
) -> RevocationResult:
    response = ocsp.load_der_ocsp_response(body)
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return RevocationResult(
            RevocationState.UNKNOWN, f"OCSP {url} answered {response.response_status.name}"
        )
    if response.serial_number != cert.serial_number or not _responder_ok(response, issuer):
        return RevocationResult(
            RevocationState.UNKNOWN,
            f"OCSP {url} gave an answer not signed by the issuer or not about this certificate",
        )
    next_update = response.next_update_utc
    if next_update is not None and next_update + _CLOCK_SKEW < at:
        return RevocationResult(RevocationState.UNKNOWN, f"OCSP {url} answer is stale")
    if response.certificate_status == ocsp.OCSPCertStatus.REVOKED:
        when = response.revocation_time_utc
        reason = response.revocation_reason.name if response.revocation_reason else "unspecified"
        return RevocationResult(
            RevocationState.REVOKED,
            f"{describe(cert)} was revoked on "
            f"{when.isoformat() if when else '?'} (reason {reason}) according to OCSP {url}",
        )
    if response.certificate_status == ocsp.OCSPCertStatus.GOOD:
        return RevocationResult(RevocationState.GOOD, f"OCSP {url}: good")
    return RevocationResult(RevocationState.UNKNOWN, f"OCSP {url} does not know {describe(cert)}")


async def check_ocsp(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    url: str,
    at: datetime,
    client: httpx.AsyncClient,
    timeout: float,
) -> RevocationResult:
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    try:
        answer = await client.post(
            url,
            content=request.public_bytes(serialization.Encoding.DER),
            headers={"Content-Type": "application/ocsp-request"},
            timeout=timeout,
        )
        answer.raise_for_status()
        return _interpret_ocsp(answer.content, cert, issuer, at, url)
    except (httpx.HTTPError, ValueError) as exc:
        return RevocationResult(RevocationState.UNKNOWN, f"OCSP {url} failed: {exc}")


async def check_revocation(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    crls: Sequence[x509.CertificateRevocationList],
    policy: RevocationPolicy,
    at: datetime,
    client: httpx.AsyncClient | None = None,
) -> RevocationResult:
    """OCSP first when configured (fresher), then the CRL files."""
    url = policy.ocsp_url or (_aia_ocsp_url(cert) if policy.use_aia_ocsp else None)
    ocsp_result: RevocationResult | None = None
    if url:
        if client is None:
            async with httpx.AsyncClient() as own:
                ocsp_result = await check_ocsp(cert, issuer, url, at, own, policy.timeout)
        else:
            ocsp_result = await check_ocsp(cert, issuer, url, at, client, policy.timeout)
        if ocsp_result.state is not RevocationState.UNKNOWN:
            return ocsp_result
    crl_result = check_crls(cert, issuer, crls, at)
    if crl_result.state is RevocationState.UNKNOWN and ocsp_result is not None:
        return RevocationResult(RevocationState.UNKNOWN, f"{ocsp_result.message}; {crl_result.message}")
    return crl_result
