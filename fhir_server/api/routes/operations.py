"""Operation routes (``$name``) at system, type and instance level, dispatched through
``operations/dispatch.py`` (the same path batch entries take). Registered before the instance routes so
``[type]/$op`` is never an id."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.body import read_json
from fhir_server.api.common import serve, services
from fhir_server.api.negotiation import check_accept, check_content_type
from fhir_server.interactions.base import FhirResponse
from fhir_server.interactions.request import FhirRequest
from fhir_server.operations.dispatch import run_operation

router = APIRouter()


async def _dispatch(request: Request, level: str, name: str, resource_type: str | None,
                    resource_id: str | None) -> Response:
    check_accept(request)

    async def handler(req: FhirRequest) -> FhirResponse:
        body = None
        if request.method == "POST":
            check_content_type(request)
            body = await read_json(request, services(request).settings.max_body_bytes)
        return await run_operation(req, level, name, resource_type, resource_id, request.method,
                                   list(request.query_params.multi_items()), body)

    return await serve(request, handler)


@router.api_route("/${name}", methods=["GET", "POST"])
async def system_operation(name: str, request: Request) -> Response:
    return await _dispatch(request, "system", name, None, None)


@router.api_route("/{resource_type}/${name}", methods=["GET", "POST"])
async def type_operation(resource_type: str, name: str, request: Request) -> Response:
    return await _dispatch(request, "type", name, resource_type, None)


@router.api_route("/{resource_type}/{resource_id}/${name}", methods=["GET", "POST"])
async def instance_operation(resource_type: str, resource_id: str, name: str, request: Request) -> Response:
    return await _dispatch(request, "instance", name, resource_type, resource_id)
