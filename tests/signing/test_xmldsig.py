"""Enveloped XMLDSig (application/signature+xml): round trip, tampering, structure rules, signxml interop."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml import XMLSigner

from signing import Reason, Signer, TrustStore, sign_xml, to_xml, verify_xml
from signing.xmldsig import DS_NS, parse

pytestmark = pytest.mark.req("AC-25")
DS = {"ds": DS_NS}


def _document() -> etree._Element:
    return to_xml(
        {
            "resourceType": "Bundle",
            "type": "document",
            "timestamp": "2025-05-01T10:05:00+05:00",
            "entry": [
                {
                    "fullUrl": "urn:uuid:p",
                    "resource": {"resourceType": "Patient", "id": "p", "name": [{"family": "Иванов"}]},
                }
            ],
        }
    )


@pytest.mark.parametrize("name", ["doctor", "doctor-ec"])
async def test_enveloped_signature_round_trip(
    trust: TrustStore, signer_for: Callable[[str], Signer], name: str
) -> None:
    document = _document()
    signature = await sign_xml(document, signer_for(name))
    assert signature.getparent() is document and document[-1] is signature
    status = await verify_xml(etree.tostring(document), trust)
    assert status.ok, status.summary()


async def test_changed_value_is_a_digest_mismatch(
    trust: TrustStore, signer_for: Callable[[str], Signer]
) -> None:
    document = _document()
    await sign_xml(document, signer_for("doctor"))
    data = etree.tostring(document)
    for old, new in ((b"&#1048;", b"&#1049;"), (b"document", b"documenx"), (b"+05:00", b"+06:00")):
        assert old in data
        status = await verify_xml(data.replace(old, new, 1), trust)
        assert status.reasons == (Reason.DIGEST_MISMATCH,) and not status.intact


async def test_changed_signature_value_is_a_signature_mismatch(
    trust: TrustStore, signer_for: Callable[[str], Signer]
) -> None:
    document = _document()
    signature = await sign_xml(document, signer_for("doctor"))
    value = signature.find("ds:SignatureValue", DS)
    raw = bytearray(base64.b64decode(value.text))
    raw[5] ^= 0x01
    value.text = base64.b64encode(bytes(raw)).decode()
    status = await verify_xml(etree.tostring(document), trust)
    assert status.intact and status.reasons == (Reason.SIGNATURE_MISMATCH,)


async def test_reference_must_cover_the_whole_document(
    trust: TrustStore, signer_for: Callable[[str], Signer]
) -> None:
    document = _document()
    signature = await sign_xml(document, signer_for("doctor"))
    signature.find("ds:SignedInfo/ds:Reference", DS).set("URI", "#part")
    status = await verify_xml(etree.tostring(document), trust)
    assert status.reasons == (Reason.MALFORMED,) and 'URI=""' in status.findings[0].message


async def test_unsigned_and_doubly_signed_documents_are_malformed(
    trust: TrustStore, signer_for: Callable[[str], Signer]
) -> None:
    assert (await verify_xml(etree.tostring(_document()), trust)).reasons == (Reason.MALFORMED,)
    document = _document()
    await sign_xml(document, signer_for("doctor"))
    document.append(parse(etree.tostring(document[-1])))
    assert (await verify_xml(etree.tostring(document), trust)).reasons == (Reason.MALFORMED,)
    assert (await verify_xml(b"<not-closed>", trust)).reasons == (Reason.MALFORMED,)


async def test_kazakh_gost_method_without_external_verifier_is_unsupported(
    trust: TrustStore, signer_for: Callable[[str], Signer]
) -> None:
    document = _document()
    signature = await sign_xml(document, signer_for("doctor"))
    signature.find("ds:SignedInfo/ds:SignatureMethod", DS).set(
        "Algorithm", "http://www.w3.org/2001/04/xmldsig-more#gost34310-gost34311"
    )
    assert (await verify_xml(etree.tostring(document), trust)).reasons == (Reason.UNSUPPORTED_ALGORITHM,)


async def test_pretty_printed_xml_file_can_be_signed_and_verified(
    trust: TrustStore, signer_for: Callable[[str], Signer]
) -> None:
    text = b'<?xml version="1.0"?>\n<report xmlns="urn:x">\n  <item id="1">a</item>\n  <item>b</item>\n'
    text += b"</report>\n"
    document = parse(text)
    await sign_xml(document, signer_for("doctor-ec"))
    assert (await verify_xml(etree.tostring(document), trust)).ok


async def test_signature_made_by_signxml_verifies(trust: TrustStore, pki_dir: Path) -> None:
    key = serialization.load_pem_private_key((pki_dir / "doctor.key.pem").read_bytes(), None)
    certs = (pki_dir / "doctor.cert.pem").read_text()
    signed = XMLSigner().sign(_document(), key=key, cert=certs)  # enveloped, C14N 1.1, RSA-SHA256
    status = await verify_xml(etree.tostring(signed), trust)
    assert status.ok, status.summary()
