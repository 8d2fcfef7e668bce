"""The EDS on a Consent an organisation records (AC-08: "a written consent is entered into the medical
information system with the subject's EDS").

The signed form travels in ``Consent.sourceAttachment`` (R4 Consent.source[x]): a PAdES-signed PDF
(``application/pdf``) or a CMS SignedData that encapsulates the form (``application/pkcs7-mime`` or
``application/pkcs7-signature``). It is verified before the write (never on the writer), and the IINs of
the signatures that verify are handed to the access policy, which lets the organisation record an
active Consent only when one of them is the patient's or a verified representative's
(security/policy/grants.py).

A signature counts when it is intact and its value verifies; with a trust store configured
(``KZFHIR_TRUST_DIR``) or signatures required (``KZFHIR_REQUIRE_SIGNATURES``) its certificate must also be
trusted (chain, validity, revocation), exactly as for signed Bundles (validator.py).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fhir_server.interactions.base import Services
from fhir_server.signatures.validator import installed
from signing import VerificationStatus, verify_cms, verify_pdf

PDF = "application/pdf"
CMS = ("application/pkcs7-mime", "application/pkcs7-signature")


async def consent_signers(services: Services, consent: dict[str, Any]) -> frozenset[str]:
    """The IINs of the verified EDS signatures on the Consent's signed form (empty: none)."""
    attachment = consent.get("sourceAttachment")
    validation = installed(services)
    if not isinstance(attachment, dict) or validation is None or not isinstance(attachment.get("data"), str):
        return frozenset()
    try:
        data = base64.b64decode(attachment["data"], validate=True)
    except (binascii.Error, ValueError):
        return frozenset()
    kind = str(attachment.get("contentType", "")).split(";")[0].strip().lower()
    service = validation.service
    trust = service.trust()
    statuses: tuple[VerificationStatus, ...]
    if kind == PDF:
        statuses = await verify_pdf(data, trust)
    elif kind in CMS:
        statuses = (await verify_cms(data, None, trust),)
    else:
        return frozenset()
    strict = service.has_trust or services.settings.require_signatures
    return frozenset(s.iin for s in statuses if s.iin and s.intact and s.valid and (s.trusted or not strict))
