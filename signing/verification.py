"""The part of verification every format shares: who signed, may they, and do we trust them.

Format modules establish ``intact`` and ``valid`` (the cryptography); this module adds the signer's
certificate checks (key usage, IIN/BIN against the named signer, path to a trust anchor, validity, revocation)
and folds everything into one :class:`VerificationStatus`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from signing.certificates import check_signing_usage, name_text, to_pem
from signing.identity import check_identity, identity_of
from signing.status import Finding, Reason, VerificationStatus
from signing.trust import TrustStore


@dataclass(frozen=True, slots=True)
class Expectations:
    """What the caller knows about the signer: the Practitioner's IIN, the Organization's BIN."""

    iin: str | None = None
    bin: str | None = None
    at: datetime | None = None  # validation time; default now


@dataclass(frozen=True, slots=True)
class CryptoResult:
    """What a format module found before any certificate checks."""

    intact: bool
    valid: bool
    findings: tuple[Finding, ...] = ()
    signing_time: datetime | None = None
    algorithm: str | None = None


async def finish(
    fmt: str,
    cert: x509.Certificate,
    extra: Sequence[x509.Certificate],
    crypto: CryptoResult,
    trust: TrustStore | None,
    expect: Expectations | None = None,
) -> VerificationStatus:
    """Combine the cryptographic result with the certificate checks into a status."""
    expect = expect or Expectations()
    identity = identity_of(cert)
    findings: list[Finding] = [*crypto.findings, *check_signing_usage(cert)]
    findings += check_identity(identity, expect.iin, expect.bin)
    trusted, revoked, notes = False, False, tuple[str, ...]()
    if trust is None:
        findings.append(
            Finding(Reason.UNTRUSTED_CHAIN, "no trust store configured, the signer cannot be trusted")
        )
    else:
        chain = await trust.validate(cert, extra, expect.at)
        trusted, revoked, notes = chain.trusted, chain.revoked, chain.notes
        findings += chain.findings
    return VerificationStatus(
        format=fmt,
        intact=crypto.intact,
        valid=crypto.valid,
        trusted=trusted,
        revoked=revoked,
        findings=tuple(findings),
        signer_subject=name_text(cert.subject),
        iin=identity.iin,
        bin=identity.bin,
        signing_time=crypto.signing_time,
        algorithm=crypto.algorithm,
        certificate_pem=to_pem(cert),
        notes=notes,
    )
