"""create: ``POST [base]/[type]`` (FHIR R4 http.html §3.1.0.8), conditional with ``If-None-Exist``.

A conditional create matches only what the caller may see: a hidden match is no match, so the answer
never tells whether hidden data fits the criteria (docs/security.md "Hidden means absent").
"""

from __future__ import annotations

from typing import Any

from fhir_server.interactions.base import FhirResponse, representation
from fhir_server.interactions.executor import execute
from fhir_server.interactions.plan import create_op
from fhir_server.interactions.request import FhirRequest


async def handle(req: FhirRequest, resource_type: str, body: Any, *, if_none_exist: str | None = None) -> FhirResponse:
    op = await create_op(req, resource_type, body, if_none_exist=if_none_exist)
    await execute(req, [op], transaction=False)
    assert op.stored is not None
    return representation(op.stored, req.prefer, 201 if op.outcome == "created" else 200, req.base_url, location=True)
