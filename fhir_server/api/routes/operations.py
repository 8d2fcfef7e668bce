"""Operation routes (``$name``) at type and instance level. Registered before the instance routes so
``[type]/$op`` is never read as an id."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.body import read_json
from fhir_server.api.common import render, services
from fhir_server.api.negotiation import check_accept, check_content_type, is_pretty
from fhir_server.operations import validate

router = APIRouter()


async def _validate(request: Request, resource_type: str, resource_id: str | None) -> Response:
    check_accept(request)
    svc = services(request)
    body = None
    if request.method == "POST":
        check_content_type(request)
        body = await read_json(request, svc.settings.max_body_bytes)
    resp = await validate.handle(svc, resource_type, resource_id, body, dict(request.query_params),
                                 pretty=is_pretty(request))
    return render(request, resp)


@router.post("/{resource_type}/$validate")
async def validate_type_route(resource_type: str, request: Request) -> Response:
    return await _validate(request, resource_type, None)


@router.api_route("/{resource_type}/{resource_id}/$validate", methods=["GET", "POST"])
async def validate_instance_route(resource_type: str, resource_id: str, request: Request) -> Response:
    return await _validate(request, resource_type, resource_id)
