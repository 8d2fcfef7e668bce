"""``POST [base]``: batch or transaction, told apart by ``Bundle.type`` (FHIR R4 http.html §3.1.0.11)."""

from __future__ import annotations

import uuid
from typing import Any

from fhir_server.errors import FhirError
from fhir_server.i18n import msg
from fhir_server.interactions import batch, transaction
from fhir_server.interactions.base import FhirResponse
from fhir_server.interactions.request import FhirRequest
from fhir_server.jsonio import dumps


async def handle(req: FhirRequest, body: Any) -> FhirResponse:
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise FhirError("invalid", msg("bundle.not_a_bundle"),
                        code="invalid", expression="resourceType")
    kind = body.get("type")
    if kind not in ("batch", "transaction"):
        raise FhirError("invalid", msg("bundle.bad_type", type=kind), code="value",
                        expression="Bundle.type")
    entries = body.get("entry", [])
    if not isinstance(entries, list):
        raise FhirError("invalid", msg("bundle.entry_not_array"), code="structure", expression="Bundle.entry")
    if len(entries) > req.settings.max_bundle_entries:  # issue 12: bounded work (docs/limits.md)
        raise FhirError("too_large", msg("bundle.too_many_entries", type=kind, limit=req.settings.max_bundle_entries),
                        expression="Bundle.entry")
    run = transaction.handle if kind == "transaction" else batch.handle
    out_entries = await run(req, body)
    response = {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": f"{kind}-response",
                "entry": out_entries}
    return FhirResponse(200, dumps(response, pretty=req.pretty))
