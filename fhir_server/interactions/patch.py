"""patch: ``PATCH [base]/[type]/[id]`` and conditional patch (FHIR R4 http.html §3.1.0.6).

The patch is applied to the current version the caller may see before the write unit and the result
validated (plan.py); the unit stores it only if that version is still current (409, 412 under
``If-Match``), after the policy judged the replaced and the new version like an update.
"""

from __future__ import annotations

from typing import Any

from fhir_server.interactions.base import FhirResponse, representation
from fhir_server.interactions.executor import execute
from fhir_server.interactions.plan import patch_op
from fhir_server.interactions.request import FhirRequest


async def handle(req: FhirRequest, resource_type: str, resource_id: str | None, patch: Any, *,
                 criteria: str | None = None, if_match: str | None = None) -> FhirResponse:
    op = await patch_op(req, resource_type, resource_id, patch, criteria=criteria, if_match=if_match)
    await execute(req, [op], transaction=False)
    assert op.stored is not None
    return representation(op.stored, req.prefer, 200, req.base_url, location=False)
