"""PAdES (baseline B-B) for PDF renditions: sick-leave certificates, signed consents (TM-10, AC-07).

Signing goes through pyHanko with our :class:`signing.protocols.Signer` behind pyHanko's signer interface.
Verification lets pyHanko find each signature, its byte-range digest, its coverage and what changed after
it; the CMS inside is then checked by :mod:`signing.cades` so reasons and trust rules match the other
formats exactly.
"""

from __future__ import annotations

from dataclasses import replace
from io import BytesIO

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY, ModificationLevel, SuspiciousModification
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator.registry import SimpleCertificateStore

from signing import algorithms
from signing.algorithms import KeyKind, UnsupportedAlgorithmError
from signing.cades import verify_signed_data
from signing.protocols import Signer
from signing.status import Finding, Reason, VerificationStatus, failed
from signing.trust import TrustStore
from signing.verification import Expectations

FORMAT = "pdf"
MEDIA_TYPE = "application/pdf"
_PLACEHOLDER_SIGNATURE_SIZE = 512  # bytes reserved during pyHanko's dry run; larger than RSA-4096


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))


class _PyHankoAdapter(signers.Signer):
    """pyHanko's abstract signer backed by our one-primitive :class:`Signer`."""

    def __init__(self, signer: Signer):
        chain = [_asn1(c) for c in (signer.signing_cert, *signer.cert_chain)]
        super().__init__(signing_cert=chain[0], cert_registry=SimpleCertificateStore.from_certs(chain))
        self._signer = signer

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        if dry_run:
            return bytes(_PLACEHOLDER_SIGNATURE_SIZE)
        return await self._signer.sign_raw(data, digest_algorithm)


async def sign_pdf(
    pdf: bytes, signer: Signer, *, reason: str | None = None, location: str | None = None
) -> bytes:
    """Add a PAdES signature (new signature field) to ``pdf`` as an incremental update."""
    kind = algorithms.key_kind(signer.signing_cert)
    if kind not in (KeyKind.RSA, KeyKind.EC_P256, KeyKind.EC_P384):
        raise UnsupportedAlgorithmError(f"PAdES signing with {kind.value} keys is not supported")
    reader_count = len(PdfFileReader(BytesIO(pdf), strict=False).embedded_signatures)
    meta = signers.PdfSignatureMetadata(
        field_name=f"Signature{reader_count + 1}",
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm=algorithms.NAMES[kind].digest,
        reason=reason,
        location=location,
    )
    writer = IncrementalPdfFileWriter(BytesIO(pdf), strict=False)
    output = await signers.PdfSigner(meta, signer=_PyHankoAdapter(signer)).async_sign_pdf(writer)
    return bytes(output.getbuffer())


def _coverage_problem(sig: EmbeddedPdfSignature) -> str | None:
    """Why the signature does not vouch for the whole document as it is now, or ``None``."""
    sig.coverage = sig.evaluate_signature_coverage()  # type: ignore[assignment]
    if sig.coverage < SignatureCoverageLevel.ENTIRE_REVISION:
        return "the signature's byte range does not cover its whole revision of the document"
    if sig.coverage == SignatureCoverageLevel.ENTIRE_FILE:
        return None
    if sig.signed_revision == sig.reader.xrefs.total_revisions - 1:
        return "bytes were appended after the signed revision that are not a PDF incremental update"
    diff = sig.evaluate_modifications(DEFAULT_DIFF_POLICY)
    if isinstance(diff, SuspiciousModification):
        return f"the document was modified after signing: {diff}"
    if diff.modification_level > ModificationLevel.FORM_FILLING:
        return f"the document was modified after signing ({diff.modification_level.name})"
    return None


async def _verify_one(
    sig: EmbeddedPdfSignature, trust: TrustStore | None, expect: Expectations | None
) -> VerificationStatus:
    try:
        problem = _coverage_problem(sig)
        digest = sig.compute_digest()
    except (PdfError, ValueError, KeyError) as exc:
        return failed(FORMAT, Reason.MALFORMED, f"signature field {sig.field_name}: {exc}")
    status = await verify_signed_data(sig.signed_data, trust, expect, content_digest=digest, fmt=FORMAT)
    if problem:
        return replace(status, intact=False).with_findings(Finding(Reason.DIGEST_MISMATCH, problem))
    return status


async def verify_pdf(
    pdf: bytes, trust: TrustStore | None, expect: Expectations | None = None
) -> tuple[VerificationStatus, ...]:
    """One status per embedded signature, in document order; a MALFORMED status when there are none."""
    try:
        embedded = PdfFileReader(BytesIO(pdf), strict=False).embedded_signatures
    except (PdfError, ValueError, KeyError, IndexError) as exc:
        return (failed(FORMAT, Reason.MALFORMED, f"not a readable PDF: {exc}"),)
    if not embedded:
        return (failed(FORMAT, Reason.MALFORMED, "the PDF contains no signature"),)
    return tuple([await _verify_one(sig, trust, expect) for sig in embedded])
