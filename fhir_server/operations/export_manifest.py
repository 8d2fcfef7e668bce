"""The complete-status manifest of a bulk export (Bulk Data Access IG v2, "Response - Complete Status")."""

from __future__ import annotations

from typing import Any

from fhir_server.operations.export_jobs import ExportJob, OutputFile

#: Manifest extension (IG v2 allows server-specific ``extension`` members): the files are de-identified.
DEIDENTIFIED_EXTENSION = "https://fhir.kzfhir.kz/StructureDefinition/bulk-export-deidentified"


def _entries(files: list[OutputFile], base: str) -> list[dict[str, Any]]:
    return [{"type": f.type, "url": f"{base}/{f.name}", "count": f.count} for f in files]


def manifest(job: ExportJob, base_url: str, *, requires_token: bool) -> dict[str, Any]:
    """``transactionTime``, ``request``, ``requiresAccessToken``, ``output`` (type, url, count) and
    ``error`` (OperationOutcome files). ``requiresAccessToken`` is true whenever security is on: the
    file URLs answer only the bearer token of the client that started the export."""
    base = f"{base_url.rstrip('/')}/$export-file/{job.id}"
    out: dict[str, Any] = {
        "transactionTime": job.transaction_time,
        "request": job.request_url,
        "requiresAccessToken": requires_token,
        "output": _entries(job.output, base),
        "error": _entries(job.errors, base),
    }
    if job.spec.deidentify:
        out["extension"] = {DEIDENTIFIED_EXTENSION: True}
    return out


def outcome(severity: str, code: str, diagnostics: str) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [{"severity": severity, "code": code,
                                                           "diagnostics": diagnostics}]}
