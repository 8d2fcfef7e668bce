"""EDS signatures inside the server (AC-25, TM-10): Bundle signatures verified on write, a Provenance
for each signed record, and the ``$verify-signature`` operation. The verification itself is the
``signing`` package's; see docs/signing.md "Server integration"."""

from fhir_server.signatures.provenance import SIGNER_CERTIFICATE, build_provenance, record_provenance
from fhir_server.signatures.service import SignatureService
from fhir_server.signatures.setup import install
from fhir_server.signatures.signer import ExpectedSigner, expected_signer
from fhir_server.signatures.validator import SignatureValidation, installed, is_record, status_issues

__all__ = [
    "SIGNER_CERTIFICATE",
    "ExpectedSigner",
    "SignatureService",
    "SignatureValidation",
    "build_provenance",
    "expected_signer",
    "install",
    "installed",
    "is_record",
    "record_provenance",
    "status_issues",
]
