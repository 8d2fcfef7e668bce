"""De-identified bulk exports (AC-19: analytics, statistics and research get pseudonymised data).

``_deidentify=true`` runs every exported resource through ``security.deidentify`` under a secret of
the job's own: HMAC-SHA256(configured secret, job id). Within one export, ids, references and
identifiers map consistently (references between the files keep resolving) and each patient's dates
move by one offset; two exports cannot be linked with each other, nor with the server's ids,
without the configured secret.

The configured secret comes from ``Settings.export_deidentify_secret`` when the settings have that
field, otherwise from the environment variable ``KZFHIR_EXPORT_DEIDENTIFY_SECRET`` (the same
variable pydantic-settings would read for that field). At least 16 bytes; without it,
de-identified exports are refused.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any

from fhir_server import jsonio
from fhir_server.errors import FhirError
from fhir_server.security.deidentify import Deidentifier

SECRET_ENV = "KZFHIR_EXPORT_DEIDENTIFY_SECRET"
MIN_SECRET_BYTES = 16


def configured_secret(settings: Any) -> bytes:
    """The operator's secret; 400 when de-identification is asked for but not configured."""
    value = getattr(settings, "export_deidentify_secret", None)
    if value is not None and hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    if not value:
        value = os.environ.get(SECRET_ENV, "")
    secret = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if len(secret) < MIN_SECRET_BYTES:
        raise FhirError("invalid", "de-identified exports are not configured on this server (the operator sets "
                        f"{SECRET_ENV}, at least {MIN_SECRET_BYTES} bytes)", code="not-supported",
                        expression="_deidentify")
    return secret


def job_secret(secret: bytes, job_id: str) -> bytes:
    """The job's own key: pseudonyms differ between exports, so they cannot be joined (AC-19)."""
    return hmac.new(secret, f"kzfhir-bulk-export\x1f{job_id}".encode(), hashlib.sha256).digest()


def deidentified_lines(deidentifier: Deidentifier, items: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """(type, NDJSON line) of each stored resource after de-identification. Parsed with ``jsonio``
    so that decimals keep their exact text (FHIR R4 decimal precision)."""
    resources = [jsonio.loads(data) for _, data in items]
    out = deidentifier.deidentify(resources)
    return [(resource_type, jsonio.dumps(resource)) for (resource_type, _), resource in zip(items, out, strict=True)]
