"""The complete-status body of an ``$import`` job (Bulk Data Import proposal, "Response - Complete Status").

``output`` and ``error`` correspond one to one with the request's ``input``: ``output[i].count`` is the
number of resources of input ``i`` imported, ``error[i]`` (only for inputs with refused lines) links the
OperationOutcome NDJSON of its refused lines. The counts per resource type, which the proposal does not
define, are in ``extension`` under this server's URL.
"""

from __future__ import annotations

from typing import Any

from fhir_server.operations.import_jobs import ImportJob

COUNTS_EXTENSION = "https://fhir.kzfhir.kz/StructureDefinition/bulk-import-counts"


def manifest(job: ImportJob, base_url: str, *, requires_token: bool) -> dict[str, Any]:
    files = f"{base_url.rstrip('/')}/$import-file/{job.id}"
    output = [{"type": "OperationOutcome", "inputUrl": r.url, "count": r.count} for r in job.results]
    error = [{"type": "OperationOutcome", "inputUrl": r.url, "count": r.errors, "url": f"{files}/{r.error_file}"}
             for r in job.results if r.error_file]
    return {
        "transactionTime": job.transaction_time,
        "request": job.request_url,
        "requiresAccessToken": requires_token,
        "output": output,
        "error": error,
        "extension": {COUNTS_EXTENSION: dict(sorted(job.by_type.items()))},
    }
