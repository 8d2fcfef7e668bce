"""Wires EDS signature checking into the server (used once by api/app.py)."""

from __future__ import annotations

from fhir_server.interactions.base import Services
from fhir_server.signatures.provenance import record_provenance
from fhir_server.signatures.validator import SignatureValidation, installed


def install(services: Services) -> None:
    """Add the signature validator to the write validators and the Provenance hook to the write hooks.

    Idempotent: calling it twice installs nothing more.
    """
    if installed(services) is None:
        services.extra_validators.append(SignatureValidation(services.settings))
    if record_provenance not in services.write_hooks:
        services.write_hooks.append(record_provenance)
