"""Write-time check of Bundle signatures (AC-25, TM-10): a validator in ``Services.extra_validators``.

Medical records are official documents entered with the medical worker's EDS (AC-25). A record is a
``document`` Bundle or a Bundle whose first entry is a Composition (R4 documents.html §3.3.1). Every
Bundle that carries ``Bundle.signature`` has it verified; a record without one is refused when
``require_signatures`` is on. Without a trust store the signature is still checked for integrity and
the signer's identity, and "untrusted" is a warning, unless signatures are required.
"""

from __future__ import annotations

from typing import Any

from fhir_server.config import Settings
from fhir_server.interactions.base import Services
from fhir_server.signatures.service import SignatureService
from fhir_server.signatures.signer import ExpectedSigner, expected_signer
from fhir_server.validation.issues import Issue
from signing import Reason, VerificationStatus

WHERE = "Bundle.signature"
VERIFIABLE_FORMATS = ("application/jose", "application/pkcs7-signature", "application/signature+xml")


def is_record(bundle: dict[str, Any]) -> bool:
    """A document Bundle, or a Bundle whose first entry is a Composition (a Composition-based record)."""
    if bundle.get("type") == "document":
        return True
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
        return False
    first = entries[0].get("resource")
    return isinstance(first, dict) and first.get("resourceType") == "Composition"


def status_issues(status: VerificationStatus, *, trusted_store: bool, required: bool) -> list[Issue]:
    """The verification result as issues: one error naming every reason code, a warning, notes.

    All reasons go into one issue: issues with the same code and expression are merged downstream
    (validation.on_write.merge), and a revoked *and* mismatched certificate must show both.
    """
    lenient = not trusted_store and not required  # no trust store: trust cannot be established here
    errors = [f for f in status.findings if not (lenient and f.reason is Reason.UNTRUSTED_CHAIN)]
    issues: list[Issue] = []
    if errors or not (status.intact and status.valid):
        code = "structure" if errors and all(f.reason is Reason.MALFORMED for f in errors) else "security"
        text = "; ".join(f"{f.reason.value}: {f.message}" for f in errors) or "the signature does not verify"
        issues.append(Issue("error", code, f"Bundle.signature refused ({text})", WHERE))
    elif len(errors) < len(status.findings):
        issues.append(Issue("warning", "security", "Bundle.signature is intact but its signer is not "
                            "trusted: no trust store is configured (KZFHIR_TRUST_DIR)", WHERE))
    if status.notes:
        issues.append(Issue("information", "informational", "; ".join(status.notes), WHERE))
    return issues


def identity_issues(expected: ExpectedSigner, *, required: bool) -> list[Issue]:
    if expected.known:
        return []
    return [Issue("error" if required else "warning", "security",
                  "Bundle.signature.who names no Practitioner / Organization with an IIN / BIN (in the "
                  "Bundle or as identifier), so the certificate cannot be matched to the signer",
                  f"{WHERE}.who")]


class SignatureValidation:
    """Callable ``(resource, mode) -> issues`` appended to ``Services.extra_validators``.

    The one signature rule of the server: writes and ``$validate`` both call it. It blocks until the
    verification worker answers, so ``$validate`` calls it in a thread (``blocking``).
    """

    blocking = True

    def __init__(self, settings: Settings, service: SignatureService | None = None) -> None:
        self.settings = settings
        self.service = service or SignatureService(settings)

    def __call__(self, resource: dict[str, Any], mode: str) -> list[Issue]:
        if resource.get("resourceType") != "Bundle":  # every other write pays one lookup
            return []
        return self.check(resource)[0]

    def check(self, bundle: dict[str, Any]) -> tuple[list[Issue], VerificationStatus | None]:
        """The issues of a Bundle's signature, and the verification result when there was one to verify."""
        signature = bundle.get("signature")
        required = self.settings.require_signatures
        if signature is None:
            if required and is_record(bundle):
                return [Issue("error", "required", "this record must carry Bundle.signature: the server "
                              "requires the medical worker's EDS on documents (AC-25)", WHERE)], None
            return [], None
        if not isinstance(signature, dict):
            return [Issue("error", "structure", "Bundle.signature must be a Signature object", WHERE)], None
        if signature.get("sigFormat") not in VERIFIABLE_FORMATS and not required:
            # R4 allows other signatures (an image of a handwritten one, as in the official examples):
            # they cannot be verified here, which is only an error where EDS signatures are required.
            return [Issue("warning", "not-supported", f"Bundle.signature with sigFormat "
                          f"{signature.get('sigFormat')!r} is kept but not verified", WHERE)], None
        expected = expected_signer(bundle, signature)
        status = self.service.verify_blocking(bundle, signature, expected.iin, expected.bin)
        return [*status_issues(status, trusted_store=self.service.has_trust, required=required),
                *identity_issues(expected, required=required)], status


def installed(services: Services) -> SignatureValidation | None:
    """The signature validator ``install`` put into these services, if any."""
    return next((v for v in services.extra_validators if isinstance(v, SignatureValidation)), None)
