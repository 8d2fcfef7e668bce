"""CMS / CAdES-BES detached signatures (``application/pkcs7-signature``), what NCALayer produces.

RFC 5652 SignedData without encapsulated content, with the signed attributes CAdES-BES requires
(ETSI EN 319 122-1 §5.2): content-type, message-digest, signing-time and ESS signing-certificate-v2.
For FHIR the detached content is the canonical JSON of the signed resource (R4 §2.6.2.6).
Verification also accepts what ``openssl cms -sign`` makes (with or without signed attributes, attached or
detached content) and is reused by PAdES for the CMS inside a PDF.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from functools import lru_cache

from asn1crypto import algos, cms, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from signing import algorithms
from signing.algorithms import KeyKind, UnsupportedAlgorithmError
from signing.certificates import load_der, name_text
from signing.external_verifier import verify_externally
from signing.protocols import Signer
from signing.status import Finding, Reason, VerificationStatus, failed
from signing.trust import TrustStore
from signing.verification import CryptoResult, Expectations, finish

FORMAT = "cms"
MEDIA_TYPE = "application/pkcs7-signature"
_RSA_PSS = "1.2.840.113549.1.1.10"


def _asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))


@lru_cache(maxsize=64)
def _signing_certificate_v2(cert_der: bytes) -> bytes:
    """ESS signing-certificate-v2 (RFC 5035) for a certificate; cached, a signer reuses one certificate."""
    cert = asn1_x509.Certificate.load(cert_der)
    ess = tsp.SigningCertificateV2(
        {
            "certs": [
                {
                    "cert_hash": hashlib.sha256(cert.dump()).digest(),
                    "issuer_serial": {
                        "issuer": [asn1_x509.GeneralName("directory_name", cert.issuer)],
                        "serial_number": cert.serial_number,
                    },
                }
            ]
        }
    )
    return bytes(ess.dump())


def _signed_attributes(content_digest: bytes, cert_der: bytes, when: datetime) -> cms.CMSAttributes:
    ess = tsp.SigningCertificateV2.load(_signing_certificate_v2(cert_der))
    attributes = [
        cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
        cms.CMSAttribute({"type": "signing_time", "values": [cms.Time({"utc_time": when})]}),
        cms.CMSAttribute({"type": "message_digest", "values": [content_digest]}),
        cms.CMSAttribute({"type": "signing_certificate_v2", "values": [ess]}),
    ]
    # asn1crypto sorts SET OF encodings on dump, as DER requires (X.690 §11.6) and OpenSSL checks.
    return cms.CMSAttributes(attributes)


async def sign_detached(content: bytes, signer: Signer, signing_time: datetime | None = None) -> bytes:
    """DER ContentInfo(SignedData) over ``content``, content not included."""
    cert = signer.signing_cert
    names = algorithms.names_for(cert)
    when = (signing_time or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    asn_cert = _asn1_cert(cert)
    attrs = _signed_attributes(algorithms.digest(content, names.digest), asn_cert.dump(), when)
    signature = await signer.sign_raw(attrs.dump(), names.digest)
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                "issuer_and_serial_number",
                cms.IssuerAndSerialNumber(
                    {"issuer": asn_cert.issuer, "serial_number": asn_cert.serial_number}
                ),
            ),
            "digest_algorithm": algos.DigestAlgorithm({"algorithm": names.cms_digest}),
            "signed_attrs": attrs,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": names.cms_signature}),
            "signature": signature,
        }
    )
    signed_data = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": names.cms_digest})],
            "encap_content_info": {"content_type": "data"},
            "certificates": [_asn1_cert(c) for c in (cert, *signer.cert_chain)],
            "signer_infos": [signer_info],
        }
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()


def _embedded_certs(signed_data: cms.SignedData) -> list[x509.Certificate]:
    out = []
    for choice in signed_data["certificates"] or []:
        if choice.name == "certificate":
            out.append(load_der(choice.chosen.dump()))
    return out


def _find_signer(signer_info: cms.SignerInfo, certs: list[x509.Certificate]) -> x509.Certificate | None:
    sid = signer_info["sid"]
    for cert in certs:
        asn = _asn1_cert(cert)
        if sid.name == "issuer_and_serial_number":
            if asn.serial_number == sid.chosen["serial_number"].native and (
                asn.issuer.dump() == sid.chosen["issuer"].dump() or asn.issuer == sid.chosen["issuer"]
            ):
                return cert
        elif asn.key_identifier == sid.chosen.native:
            return cert
    return None


def _attr(attrs: cms.CMSAttributes, name: str) -> object | None:
    for attr in attrs:
        if attr["type"].native == name:
            return attr["values"][0].native
    return None


def check_signer_info(
    signer_info: cms.SignerInfo,
    cert: x509.Certificate,
    content: bytes | None,
    content_digest: bytes | None = None,
) -> CryptoResult:
    """Digest and signature checks for one SignerInfo; ``content_digest`` replaces ``content`` (PAdES)."""
    digest_name = algorithms.DIGEST_OID_NAMES.get(signer_info["digest_algorithm"]["algorithm"].dotted)
    sig_oid = signer_info["signature_algorithm"]["algorithm"].dotted
    if digest_name is None or sig_oid == _RSA_PSS:
        oid = sig_oid if digest_name else signer_info["digest_algorithm"]["algorithm"].dotted
        raise UnsupportedAlgorithmError(f"CMS algorithm {oid} is not supported")
    algorithm = f"{algorithms.key_kind(cert).value} with {digest_name}"
    computed = (
        content_digest if content_digest is not None else algorithms.digest(content or b"", digest_name)
    )
    attrs = signer_info["signed_attrs"]
    signature = signer_info["signature"].native
    if not attrs:
        if content is None:
            return CryptoResult(False, False, (Finding(Reason.MALFORMED, "no signed attributes to check"),))
        ok = algorithms.verify_raw(cert, signature, content, digest_name)
        return _result(ok, ok, None, algorithm)
    when = _attr(attrs, "signing_time")
    if _attr(attrs, "message_digest") != computed:
        return CryptoResult(
            False,
            False,
            (
                Finding(
                    Reason.DIGEST_MISMATCH,
                    "the signed content's digest differs from the message-digest attribute: "
                    "the content changed after signing",
                ),
            ),
            when if isinstance(when, datetime) else None,
            algorithm,
        )
    ok = algorithms.verify_raw(cert, signature, b"\x31" + attrs.dump()[1:], digest_name)
    return _result(True, ok, when, algorithm)


def _result(intact: bool, valid: bool, when: object, algorithm: str) -> CryptoResult:
    findings = (
        ()
        if valid
        else (
            Finding(
                Reason.SIGNATURE_MISMATCH, "the signature value does not verify with the signer's public key"
            ),
        )
    )
    return CryptoResult(intact, valid, findings, when if isinstance(when, datetime) else None, algorithm)


def _load(cms_der: bytes) -> cms.SignedData:
    info = cms.ContentInfo.load(cms_der)
    if info["content_type"].native != "signed_data":
        raise ValueError(f"content type {info['content_type'].native}, not signedData")
    signed_data: cms.SignedData = info["content"]
    return signed_data


async def verify_detached(
    cms_der: bytes, content: bytes | None, trust: TrustStore | None, expect: Expectations | None = None
) -> VerificationStatus:
    """Verify a CMS signature; ``content`` may be ``None`` when the CMS encapsulates it."""
    try:
        signed_data = _load(cms_der)
        embedded = signed_data["encap_content_info"]["content"].native
    except (ValueError, TypeError, KeyError) as exc:
        return failed(FORMAT, Reason.MALFORMED, f"not a DER CMS SignedData: {exc}")
    if content is None:
        if embedded is None:
            return failed(FORMAT, Reason.MALFORMED, "detached CMS and no content given to check it against")
        content = embedded
    elif embedded is not None and embedded != content:
        return failed(
            FORMAT, Reason.DIGEST_MISMATCH, "the CMS encapsulates content that differs from the data"
        )
    return await verify_signed_data(signed_data, trust, expect, content=content, raw=cms_der)


async def verify_signed_data(
    signed_data: cms.SignedData,
    trust: TrustStore | None,
    expect: Expectations | None = None,
    *,
    content: bytes | None = None,
    content_digest: bytes | None = None,
    raw: bytes | None = None,
    fmt: str = FORMAT,
) -> VerificationStatus:
    """Verify the (single) signer of a parsed SignedData, then its certificate."""
    try:
        infos = signed_data["signer_infos"]
        if len(infos) != 1:
            return failed(fmt, Reason.MALFORMED, f"{len(infos)} signers in the CMS; exactly one is expected")
        certs = _embedded_certs(signed_data)
        cert = _find_signer(infos[0], certs)
    except (ValueError, TypeError, KeyError) as exc:
        return failed(fmt, Reason.MALFORMED, f"unreadable CMS SignedData: {exc}")
    if cert is None:
        return failed(fmt, Reason.MALFORMED, "the signer's certificate is not included in the CMS")
    extra = [c for c in certs if c != cert]
    try:
        if algorithms.key_kind(cert) is KeyKind.GOST34310:
            verifier = trust.external_verifier if trust is not None else None
            return await verify_externally("cms", raw or b"", content, cert, verifier, expect, fmt)
        crypto = check_signer_info(infos[0], cert, content, content_digest)
    except (ValueError, TypeError, KeyError) as exc:
        return failed(fmt, Reason.MALFORMED, f"unreadable CMS SignerInfo: {exc}")
    except UnsupportedAlgorithmError as exc:
        return failed(fmt, Reason.UNSUPPORTED_ALGORITHM, str(exc), signer_subject=name_text(cert.subject))
    return await finish(fmt, cert, extra, crypto, trust, expect)
