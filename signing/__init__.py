"""EDS signing and verification for kzfhir (AC-25, TM-10): the package facade.

Imports nothing from ``fhir_server``. Key backends implement :class:`Signer` (one async ``sign_raw``);
formats are JWS (``application/jose``), CMS/CAdES-BES (``application/pkcs7-signature``), enveloped XMLDSig
(``application/signature+xml``) and PAdES. Verification returns a :class:`VerificationStatus` and never
raises. See docs/signing.md for exactly what is and is not supported.
"""

from signing.algorithms import KeyKind, UnsupportedAlgorithmError
from signing.cades import sign_detached as sign_cms
from signing.cades import verify_detached as verify_cms
from signing.canonical import CANONICAL_JSON, CANONICAL_XML, DOCUMENT, canonicalize, prune
from signing.errors import SigningError
from signing.external_verifier import HttpExternalVerifier
from signing.fhir import AUTHOR_SIGNATURE, SIG_FORMATS, sign_bundle, sign_resource, verify_fhir_signature
from signing.fhir_xml import to_xml, to_xml_bytes
from signing.gost import GostSigner
from signing.identity import SignerIdentity, check_identity, extract_bin, extract_iin, identity_of
from signing.jws import sign_detached as sign_jws
from signing.jws import verify_detached as verify_jws
from signing.pades import sign_pdf, verify_pdf
from signing.pki import init_pki
from signing.protocols import ExternalVerdict, ExternalVerifier, ExternalVerifierError, Signer
from signing.revocation import RevocationPolicy
from signing.software_key import SoftwareSigner, load_signer
from signing.status import Finding, Reason, VerificationStatus
from signing.trust import ChainResult, TrustStore
from signing.verification import Expectations
from signing.xmldsig import sign_enveloped as sign_xml
from signing.xmldsig import verify_enveloped as verify_xml

__all__ = [
    "AUTHOR_SIGNATURE",
    "CANONICAL_JSON",
    "CANONICAL_XML",
    "DOCUMENT",
    "SIG_FORMATS",
    "ChainResult",
    "Expectations",
    "ExternalVerdict",
    "ExternalVerifier",
    "ExternalVerifierError",
    "Finding",
    "GostSigner",
    "HttpExternalVerifier",
    "KeyKind",
    "Reason",
    "RevocationPolicy",
    "Signer",
    "SignerIdentity",
    "SigningError",
    "SoftwareSigner",
    "TrustStore",
    "UnsupportedAlgorithmError",
    "VerificationStatus",
    "canonicalize",
    "check_identity",
    "extract_bin",
    "extract_iin",
    "identity_of",
    "init_pki",
    "load_signer",
    "prune",
    "sign_bundle",
    "sign_cms",
    "sign_jws",
    "sign_pdf",
    "sign_resource",
    "sign_xml",
    "to_xml",
    "to_xml_bytes",
    "verify_cms",
    "verify_fhir_signature",
    "verify_jws",
    "verify_pdf",
    "verify_xml",
]
