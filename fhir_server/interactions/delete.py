"""delete: ``DELETE [base]/[type]/[id]`` and conditional delete (FHIR R4 http.html §3.1.0.7).

Deletes are logical: a new version marks the resource deleted, a read then gives 410 Gone and the
history keeps every version. 204 whether or not something was deleted (the spec allows it): a
resource the caller may not see is not deleted and answers as an unknown one would.
"""

from __future__ import annotations

from fhir_server.interactions.base import FhirResponse, etag
from fhir_server.interactions.executor import execute
from fhir_server.interactions.plan import WriteOp, delete_op
from fhir_server.interactions.request import FhirRequest


def response(op: WriteOp) -> FhirResponse:
    one = op.deleted[0] if len(op.deleted) == 1 else None
    return FhirResponse(204, None, {"ETag": etag(one.version)} if one is not None else {}, one)


async def handle(req: FhirRequest, resource_type: str, resource_id: str) -> FhirResponse:
    op = await delete_op(req, resource_type, resource_id)
    await execute(req, [op], transaction=False)
    return response(op)


async def handle_conditional(req: FhirRequest, resource_type: str, criteria: str) -> FhirResponse:
    op = await delete_op(req, resource_type, None, criteria=criteria)
    await execute(req, [op], transaction=False)
    return response(op)
