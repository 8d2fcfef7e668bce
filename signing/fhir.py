"""FHIR ``Signature`` elements: sign Bundles and resources; verify Bundle and Provenance signatures.

The signed bytes are the canonical form of the resource (R4 §2.6.2.6 for JSON, the FHIR XML of the same
pruned resource for XMLDSig) selected by the canonicalization named in ``Signature.targetFormat``. A
Bundle's signature covers the Bundle without ``id``, ``meta`` and ``signature`` (``#document``), so a
document keeps its signature when copied between servers; a Provenance signature covers its target
resource (R4 Provenance.signature: "A digital signature on the target Reference(s)").
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any, Literal

from lxml import etree

from signing import cades, jws, xmldsig
from signing.canonical import (
    CanonicalizationError,
    canonicalize,
    method_from_target_format,
    prune,
    target_format,
)
from signing.fhir_xml import FhirXmlError, to_xml
from signing.protocols import Signer
from signing.status import Reason, VerificationStatus, failed
from signing.trust import TrustStore
from signing.verification import Expectations

SignatureFormat = Literal["jws", "cms", "xml"]
SIG_FORMATS: dict[str, str] = {"jws": jws.MEDIA_TYPE, "cms": cades.MEDIA_TYPE, "xml": xmldsig.MEDIA_TYPE}
# ASTM E1762-95 signature types (R4 ValueSet signature-type); "author" fits a doctor's record (AC-25).
AUTHOR_SIGNATURE = {
    "system": "urn:iso-astm:E1762-95:2013",
    "code": "1.2.840.10065.1.12.1.1",
    "display": "Author's Signature",
}


def _reference(who: str | dict[str, Any]) -> dict[str, Any]:
    return {"reference": who} if isinstance(who, str) else dict(who)


async def sign_resource(
    resource: dict[str, Any],
    signer: Signer,
    fmt: SignatureFormat,
    who_reference: str | dict[str, Any],
    *,
    canonicalization: str | None = None,
    signature_type: dict[str, Any] | None = None,
    when: datetime | None = None,
) -> dict[str, Any]:
    """A FHIR ``Signature`` over ``resource`` (for ``Provenance.signature`` or ``Bundle.signature``)."""
    if fmt not in SIG_FORMATS:
        raise ValueError(f"unknown signature format {fmt!r}; use one of {', '.join(SIG_FORMATS)}")
    signed_at = (when or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    method = canonicalization or method_from_target_format(None, resource.get("resourceType"), fmt == "xml")
    if fmt == "jws":
        data = (await jws.sign_detached(canonicalize(resource, method), signer, signed_at)).encode("ascii")
    elif fmt == "cms":
        data = await cades.sign_detached(canonicalize(resource, method), signer, signed_at)
    else:
        document = to_xml(prune(resource, method))
        data = xmldsig.signature_element_bytes(await xmldsig.sign_enveloped(document, signer))
    media = "application/fhir+xml" if fmt == "xml" else "application/fhir+json"
    return {
        "type": [signature_type or AUTHOR_SIGNATURE],
        "when": signed_at.isoformat().replace("+00:00", "Z"),
        "who": _reference(who_reference),
        "targetFormat": target_format(method, media),
        "sigFormat": SIG_FORMATS[fmt],
        "data": base64.b64encode(data).decode("ascii"),
    }


async def sign_bundle(
    bundle: dict[str, Any],
    signer: Signer,
    fmt: SignatureFormat,
    who_reference: str | dict[str, Any],
    **options: Any,
) -> dict[str, Any]:
    """A copy of ``bundle`` with ``signature`` set (any previous signature is replaced)."""
    if bundle.get("resourceType") != "Bundle":
        raise ValueError("sign_bundle needs a Bundle; use sign_resource for a Provenance target")
    signed = {k: v for k, v in bundle.items() if k != "signature"}
    signed["signature"] = await sign_resource(signed, signer, fmt, who_reference, **options)
    return signed


def _decode(signature: dict[str, Any]) -> tuple[str, bytes] | VerificationStatus:
    """(format name, signature bytes) from a FHIR Signature, or the status explaining why not."""
    sig_format = str(signature.get("sigFormat", ""))
    fmt = next((name for name, media in SIG_FORMATS.items() if media == sig_format), None)
    if fmt is None:
        return failed(
            sig_format or "unknown",
            Reason.UNSUPPORTED_ALGORITHM,
            f"sigFormat {sig_format!r} is not supported ({', '.join(SIG_FORMATS.values())} are)",
        )
    try:
        data = base64.b64decode(str(signature.get("data", "")), validate=True)
    except (binascii.Error, ValueError):
        return failed(fmt, Reason.MALFORMED, "Signature.data is not valid base64")
    if not data:
        return failed(fmt, Reason.MALFORMED, "Signature.data is empty")
    return fmt, data


async def verify_fhir_signature(
    resource: dict[str, Any],
    signature: dict[str, Any],
    trust: TrustStore | None,
    expected_iin: str | None = None,
    expected_bin: str | None = None,
    *,
    at: datetime | None = None,
) -> VerificationStatus:
    """Verify a FHIR ``Signature`` against the resource it signs (never raises).

    ``resource`` is the signed Bundle itself (its ``signature`` is ignored when canonicalising) or a
    Provenance's target. ``expected_iin`` / ``expected_bin`` are the identifiers of the Practitioner /
    Organization named as signer (``Signature.who``), checked against the certificate.
    """
    decoded = _decode(signature)
    if isinstance(decoded, VerificationStatus):
        return decoded
    fmt, data = decoded
    expect = Expectations(expected_iin, expected_bin, at)
    method = method_from_target_format(
        signature.get("targetFormat"), resource.get("resourceType"), fmt == "xml"
    )
    try:
        if fmt == "xml":
            document = xmldsig.attach(to_xml(prune(resource, method)), data)
            return await xmldsig.verify_enveloped(document, trust, expect)
        content = canonicalize(resource, method)
    except (CanonicalizationError, FhirXmlError, ValueError, etree.XMLSyntaxError) as exc:
        return failed(fmt, Reason.MALFORMED, f"cannot rebuild the signed content: {exc}")
    if fmt == "jws":
        return await jws.verify_detached(data.decode("ascii", "replace"), content, trust, expect)
    return await cades.verify_detached(data, content, trust, expect)
