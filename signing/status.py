"""Verification results as data (pyHanko's status dataclasses): verifiers report, they never raise.

Every refusal carries a :class:`Reason` code so callers (the server's 422 on a required signature, the CLI)
can tell an expired certificate from a revoked one or from a tampered document (AC-25, TM-10).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any


class Reason(StrEnum):
    """Why a signature was refused; the value is stable and safe to show or store."""

    DIGEST_MISMATCH = "digest-mismatch"  # signed content changed after signing
    SIGNATURE_MISMATCH = "signature-mismatch"  # signature value does not verify with the signer's key
    UNTRUSTED_CHAIN = "untrusted-chain"  # no path to a configured trust anchor
    CERT_EXPIRED = "certificate-expired"
    CERT_NOT_YET_VALID = "certificate-not-yet-valid"
    REVOKED = "certificate-revoked"
    REVOCATION_UNKNOWN = "revocation-unknown"  # hard revocation policy and no usable CRL/OCSP answer
    WRONG_KEY_USAGE = "wrong-key-usage"  # e.g. an authentication-only certificate
    IIN_MISMATCH = "iin-mismatch"
    BIN_MISMATCH = "bin-mismatch"
    UNSUPPORTED_ALGORITHM = "unsupported-algorithm"
    MALFORMED = "malformed"
    VERIFIER_UNAVAILABLE = "verifier-unavailable"  # external (GOST 34.310) verifier failed to answer


@dataclass(frozen=True, slots=True)
class Finding:
    """One reason plus a human message naming the exact certificate, value or element involved."""

    reason: Reason
    message: str


@dataclass(frozen=True, slots=True)
class VerificationStatus:
    """Outcome of verifying one signature.

    ``intact``: the signed content digest matches; ``valid``: the signature value verifies with the signer's
    public key; ``trusted``: the signer's certificate chains to a trust anchor and passed validity, usage and
    revocation checks. ``ok`` is the single yes/no a caller should act on.
    """

    format: str
    intact: bool = False
    valid: bool = False
    trusted: bool = False
    revoked: bool = False
    findings: tuple[Finding, ...] = ()
    signer_subject: str | None = None
    iin: str | None = None
    bin: str | None = None
    signing_time: datetime | None = None
    algorithm: str | None = None
    certificate_pem: str | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def reasons(self) -> tuple[Reason, ...]:
        return tuple(f.reason for f in self.findings)

    @property
    def ok(self) -> bool:
        return self.intact and self.valid and self.trusted and not self.revoked and not self.findings

    def with_findings(self, *findings: Finding) -> VerificationStatus:
        return replace(self, findings=self.findings + tuple(findings))

    def summary(self) -> str:
        """One line: ``OK`` or the reason codes with their messages."""
        if self.ok:
            return f"OK {self.format} signature by {self.signer_subject}"
        return "; ".join(f"{f.reason.value}: {f.message}" for f in self.findings) or "not verified"

    def to_issues(self) -> list[dict[str, Any]]:
        """OperationOutcome.issue entries (R4 §3.1.0) for the server's 422; no server import needed."""
        return [
            {
                "severity": "error",
                "code": "security" if f.reason is not Reason.MALFORMED else "structure",
                "details": {"coding": [{"system": "urn:kzfhir:signature-reason", "code": f.reason.value}]},
                "diagnostics": f.message,
            }
            for f in self.findings
        ]


def failed(fmt: str, reason: Reason, message: str, **fields: Any) -> VerificationStatus:
    """A status for a signature that could not even be checked (malformed, unsupported...)."""
    return VerificationStatus(format=fmt, findings=(Finding(reason, message),), **fields)
