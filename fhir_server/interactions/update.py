"""update: ``PUT [base]/[type]/[id]`` and conditional update ``PUT [base]/[type]?[criteria]``.

FHIR R4 http.html §3.1.0.4: update-as-create with a client id, ``If-Match`` version-aware updates
(412 on mismatch), 400 when the body id is missing or differs from the URL. Under the access policy
a version the caller may not see is absent: ``If-Match`` then fails as for an unknown id, and an
update-as-create of patient data is refused alike whether the id is free or taken (405, setting
``update_as_create``); the policy judges both the replaced and the new version (executor.py).
"""

from __future__ import annotations

from typing import Any

from fhir_server.interactions.base import FhirResponse, representation
from fhir_server.interactions.executor import execute
from fhir_server.interactions.plan import update_op
from fhir_server.interactions.request import FhirRequest


async def handle(req: FhirRequest, resource_type: str, resource_id: str, body: Any, *,
                 if_match: str | None = None) -> FhirResponse:
    op = await update_op(req, resource_type, resource_id, body, if_match=if_match)
    await execute(req, [op], transaction=False)
    assert op.stored is not None
    created = op.outcome == "created"
    return representation(op.stored, req.prefer, 201 if created else 200, req.base_url, location=created)


async def handle_conditional(req: FhirRequest, resource_type: str, criteria: str, body: Any, *,
                             if_match: str | None = None) -> FhirResponse:
    op = await update_op(req, resource_type, None, body, criteria=criteria, if_match=if_match)
    await execute(req, [op], transaction=False)
    assert op.stored is not None
    return representation(op.stored, req.prefer, 201 if op.outcome == "created" else 200, req.base_url,
                          location=True)
