"""PAdES for PDF renditions (sick-leave certificate, signed consent): pyHanko signing, our verification."""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import pytest
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from signing import Expectations, Reason, Signer, TrustStore, sign_pdf, verify_pdf
from tests.signing.samples import make_pdf

pytestmark = [pytest.mark.req("TM-10"), pytest.mark.req("AC-25")]


@pytest.mark.parametrize("name", ["doctor", "doctor-ec"])
async def test_pades_round_trip_verifies(
    trust: TrustStore, signer_for: Callable[[str], Signer], name: str
) -> None:
    signed = await sign_pdf(make_pdf(), signer_for(name), reason="sick leave certificate")
    (status,) = await verify_pdf(signed, trust)
    assert status.ok, status.summary()
    assert status.format == "pdf" and status.iin is not None


async def test_pyhanko_validates_our_signature_independently(
    pki_dir: Path, signer_for: Callable[[str], Signer]
) -> None:
    signed = await sign_pdf(make_pdf(), signer_for("doctor"))
    embedded = PdfFileReader(BytesIO(signed)).embedded_signatures[0]
    root = asn1_x509.Certificate.load(pem.unarmor((pki_dir / "trust" / "root-ca.pem").read_bytes())[2])
    context = ValidationContext(trust_roots=[root], allow_fetching=False, revocation_mode="soft-fail")
    result = await async_validate_pdf_signature(embedded, signer_validation_context=context)
    assert result.intact and result.valid and result.trusted


async def test_changed_byte_in_the_signed_range_fails(
    trust: TrustStore, signer_for: Callable[[str], Signer]
) -> None:
    signed = await sign_pdf(make_pdf("Diagnosis J06.9"), signer_for("doctor"))
    offset = signed.index(b"J06.9")
    tampered = signed[:offset] + b"J07.9" + signed[offset + 5 :]
    (status,) = await verify_pdf(tampered, trust)
    assert not status.intact and Reason.DIGEST_MISMATCH in status.reasons


async def test_appended_bytes_after_the_signature_fail(
    trust: TrustStore, signer_for: Callable[[str], Signer]
) -> None:
    signed = await sign_pdf(make_pdf(), signer_for("doctor"))
    (status,) = await verify_pdf(signed + b"\n% tail\n", trust)
    assert not status.ok and status.reasons == (Reason.DIGEST_MISMATCH,)


async def test_second_signature_keeps_the_first_one_valid(
    trust: TrustStore, signer_for: Callable[[str], Signer]
) -> None:
    once = await sign_pdf(make_pdf(), signer_for("doctor"))
    twice = await sign_pdf(once, signer_for("employee"))
    statuses = await verify_pdf(twice, trust)
    assert [s.ok for s in statuses] == [True, True]
    assert [s.iin for s in statuses] == ["123456789011", "123456789013"]


async def test_pdf_signer_iin_is_checked(trust: TrustStore, signer_for: Callable[[str], Signer]) -> None:
    signed = await sign_pdf(make_pdf(), signer_for("doctor"))
    (status,) = await verify_pdf(signed, trust, Expectations(iin="123456789099"))
    assert status.reasons == (Reason.IIN_MISMATCH,)


async def test_revoked_signer_of_a_pdf_is_refused(
    trust: TrustStore, signer_for: Callable[[str], Signer]
) -> None:
    (status,) = await verify_pdf(await sign_pdf(make_pdf(), signer_for("revoked")), trust)
    assert status.intact and status.reasons == (Reason.REVOKED,)


async def test_unsigned_or_broken_pdf_is_malformed(trust: TrustStore) -> None:
    (unsigned,) = await verify_pdf(make_pdf(), trust)
    (garbage,) = await verify_pdf(b"%PDF-1.7 this is not a pdf", trust)
    assert unsigned.reasons == (Reason.MALFORMED,) and "no signature" in unsigned.findings[0].message
    assert garbage.reasons == (Reason.MALFORMED,)
