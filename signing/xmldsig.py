"""Enveloped XMLDSig (``application/signature+xml``), the form NCALayer's ``signXml`` produces.

Signing builds ``ds:Signature`` as the last child of the document element: one ``Reference URI=""`` with the
enveloped-signature and exclusive-C14N transforms, SignedInfo canonicalised with exclusive C14N, the signer's
certificate chain in ``KeyInfo/X509Data``. The key stays behind :class:`signing.protocols.Signer`, so the
signature is assembled here; verification is delegated to ``signxml`` (an independent implementation) after
checking the reference covers the whole document.
"""

from __future__ import annotations

import base64

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from signxml import XMLVerifier
from signxml.exceptions import InvalidCertificate, InvalidDigest, InvalidInput, InvalidSignature
from signxml.verifier import SignatureConfiguration

from signing import algorithms
from signing.algorithms import KeyKind, UnsupportedAlgorithmError
from signing.certificates import load_der
from signing.external_verifier import verify_externally
from signing.protocols import Signer
from signing.status import Finding, Reason, VerificationStatus, failed
from signing.trust import TrustStore
from signing.verification import CryptoResult, Expectations, finish

FORMAT = "xml"
MEDIA_TYPE = "application/signature+xml"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
# Kazakh GOST URIs (pkigovkz/xmldsig DsigConstants, kz-domain §5.2): checked only by an external verifier.
GOST_SIGNATURE_METHODS = frozenset(
    {
        "http://www.w3.org/2001/04/xmldsig-more#gost34310-gost34311",
        "urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:gostr34102015-gostr34112015-256",
        "urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:gostr34102015-gostr34112015-512",
    }
)
_SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=False)


def _ds(parent: etree._Element, name: str, **attrs: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{DS_NS}}}{name}", attrs)


def _c14n(elem: etree._Element) -> bytes:
    return etree.tostring(elem, method="c14n", exclusive=True, with_comments=False)


async def sign_enveloped(document: etree._Element, signer: Signer) -> etree._Element:
    """Append a ``ds:Signature`` to ``document`` (modified in place) and return the signature element."""
    cert = signer.signing_cert
    names = algorithms.names_for(cert)
    if names.xml_signature is None or names.xml_digest is None:
        raise UnsupportedAlgorithmError(
            f"XMLDSig signing with {algorithms.key_kind(cert).value} keys is not supported"
        )
    digest_value = algorithms.digest(_c14n(document), names.digest)
    signature = etree.SubElement(document, f"{{{DS_NS}}}Signature", nsmap={"ds": DS_NS})
    signed_info = _ds(signature, "SignedInfo")
    _ds(signed_info, "CanonicalizationMethod", Algorithm=EXC_C14N)
    _ds(signed_info, "SignatureMethod", Algorithm=names.xml_signature)
    reference = _ds(signed_info, "Reference", URI="")
    transforms = _ds(reference, "Transforms")
    _ds(transforms, "Transform", Algorithm=ENVELOPED)
    _ds(transforms, "Transform", Algorithm=EXC_C14N)
    _ds(reference, "DigestMethod", Algorithm=names.xml_digest)
    _ds(reference, "DigestValue").text = base64.b64encode(digest_value).decode()
    value = await signer.sign_raw(_c14n(signed_info), names.digest)
    if algorithms.key_kind(cert) in (KeyKind.EC_P256, KeyKind.EC_P384):
        value = algorithms.ecdsa_der_to_raw(value, cert)  # XMLDSig 1.1 §6.4.3: raw r || s
    _ds(signature, "SignatureValue").text = base64.b64encode(value).decode()
    x509_data = _ds(_ds(signature, "KeyInfo"), "X509Data")
    for c in (cert, *signer.cert_chain):
        _ds(x509_data, "X509Certificate").text = base64.b64encode(c.public_bytes(Encoding.DER)).decode()
    return signature


def parse(data: bytes) -> etree._Element:
    """Parse XML without entity expansion or network access."""
    return etree.fromstring(data, _SAFE_PARSER)


def _signature_parts(root: etree._Element) -> tuple[etree._Element, str, list[x509.Certificate]]:
    signatures = root.findall(f"{{{DS_NS}}}Signature")
    if len(signatures) != 1:
        raise ValueError(
            f"{len(signatures)} enveloped ds:Signature elements under the document element; "
            "exactly one is expected"
        )
    sig = signatures[0]
    references = sig.findall(f"{{{DS_NS}}}SignedInfo/{{{DS_NS}}}Reference")
    if len(references) != 1 or references[0].get("URI") != "":
        raise ValueError('the signature must have exactly one Reference with URI="" (the whole document)')
    method = sig.find(f"{{{DS_NS}}}SignedInfo/{{{DS_NS}}}SignatureMethod")
    certs = [
        load_der(base64.b64decode(e.text or ""))
        for e in sig.iterfind(f"{{{DS_NS}}}KeyInfo/{{{DS_NS}}}X509Data/{{{DS_NS}}}X509Certificate")
    ]
    if not certs:
        raise ValueError("ds:KeyInfo carries no X509Certificate")
    return sig, method.get("Algorithm", "") if method is not None else "", certs


def _crypto(root: etree._Element, cert: x509.Certificate, method: str) -> CryptoResult:
    config = SignatureConfiguration(expect_references=1)
    try:
        XMLVerifier().verify(etree.tostring(root), x509_cert=cert, expect_config=config)
    except InvalidDigest:
        return CryptoResult(
            False,
            False,
            (
                Finding(
                    Reason.DIGEST_MISMATCH,
                    "the document's digest differs from the signed DigestValue: it changed after signing",
                ),
            ),
            algorithm=method,
        )
    except InvalidCertificate as exc:
        return CryptoResult(
            True, False, (Finding(Reason.MALFORMED, f"certificate problem: {exc}"),), algorithm=method
        )
    except InvalidSignature:
        return CryptoResult(
            True,
            False,
            (
                Finding(
                    Reason.SIGNATURE_MISMATCH, "SignatureValue does not verify with the signer's public key"
                ),
            ),
            algorithm=method,
        )
    return CryptoResult(True, True, algorithm=method)


async def verify_enveloped(
    document: etree._Element | bytes, trust: TrustStore | None, expect: Expectations | None = None
) -> VerificationStatus:
    """Verify the enveloped signature of an XML document."""
    try:
        root = parse(document) if isinstance(document, bytes) else document
        _, method, certs = _signature_parts(root)
    except (ValueError, etree.XMLSyntaxError) as exc:
        return failed(FORMAT, Reason.MALFORMED, str(exc))
    cert = certs[0]
    if method in GOST_SIGNATURE_METHODS:
        verifier = trust.external_verifier if trust is not None else None
        return await verify_externally("xml", etree.tostring(root), None, cert, verifier, expect, FORMAT)
    try:
        algorithms.key_kind(cert)
        crypto = _crypto(root, cert, method)
    except UnsupportedAlgorithmError as exc:
        return failed(FORMAT, Reason.UNSUPPORTED_ALGORITHM, str(exc))
    except InvalidInput as exc:
        return failed(
            FORMAT,
            Reason.UNSUPPORTED_ALGORITHM if "algorithm" in str(exc).lower() else Reason.MALFORMED,
            f"signature rejected before checking: {exc}",
        )
    except (etree.LxmlError, ValueError) as exc:  # schema-invalid ds:Signature, bad base64 ...
        return failed(FORMAT, Reason.MALFORMED, f"ds:Signature is not valid XMLDSig: {exc}")
    return await finish(FORMAT, cert, certs[1:], crypto, trust, expect)


def signature_element_bytes(signature: etree._Element) -> bytes:
    return etree.tostring(signature)


def attach(document: etree._Element, signature_xml: bytes) -> etree._Element:
    """Put a detached-stored ``ds:Signature`` back as the last child of ``document`` (for verification)."""
    document.append(parse(signature_xml))
    return document
