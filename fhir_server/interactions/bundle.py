"""``POST [base]``: batch or transaction, told apart by ``Bundle.type`` (FHIR R4 http.html §3.1.0.11)."""

from __future__ import annotations

import uuid
from typing import Any

from fhir_server.errors import FhirError
from fhir_server.interactions import batch, transaction
from fhir_server.interactions.base import FhirResponse
from fhir_server.interactions.request import FhirRequest
from fhir_server.jsonio import dumps


async def handle(req: FhirRequest, body: Any) -> FhirResponse:
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise FhirError("invalid", "POST to the base URL takes a Bundle of type batch or transaction",
                        code="invalid", expression="resourceType")
    kind = body.get("type")
    if kind not in ("batch", "transaction"):
        raise FhirError("invalid", f"Bundle.type must be batch or transaction, not {kind!r}", code="value",
                        expression="Bundle.type")
    entries = body.get("entry", [])
    if not isinstance(entries, list):
        raise FhirError("invalid", "Bundle.entry must be an array", code="structure", expression="Bundle.entry")
    if len(entries) > req.settings.max_bundle_entries:  # issue 12: bounded work (docs/limits.md)
        raise FhirError("too_large", f"a {kind} takes at most {req.settings.max_bundle_entries} entries "
                        "(setting max_bundle_entries)", expression="Bundle.entry")
    run = transaction.handle if kind == "transaction" else batch.handle
    out_entries = await run(req, body)
    response = {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": f"{kind}-response",
                "entry": out_entries}
    return FhirResponse(200, dumps(response, pretty=req.pretty))
