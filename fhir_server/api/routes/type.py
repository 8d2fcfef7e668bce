"""Type-level routes: ``[base]/[type]`` (create, conditional update/patch/delete, history, search)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.body import read_json
from fhir_server.api.common import serve, services
from fhir_server.api.negotiation import check_accept, check_content_type, check_patch_body
from fhir_server.errors import FhirError
from fhir_server.i18n import msg
from fhir_server.interactions import create, delete, history, patch, update
from fhir_server.interactions.base import FhirResponse
from fhir_server.interactions.request import FhirRequest

router = APIRouter()


@router.get("/{resource_type}/_history")
async def type_history_route(resource_type: str, request: Request) -> Response:
    check_accept(request)
    params = dict(request.query_params)
    return await serve(request, lambda req: history.handle(req, resource_type, None, params))


@router.post("/{resource_type}")
async def create_route(resource_type: str, request: Request) -> Response:
    check_accept(request)

    async def handler(req: FhirRequest) -> FhirResponse:
        check_content_type(request)
        body = await read_json(request, services(request).settings.max_body_bytes)
        return await create.handle(req, resource_type, body, if_none_exist=request.headers.get("if-none-exist"))

    return await serve(request, handler)


def _criteria(request: Request) -> str:
    items = [(k, v) for k, v in request.query_params.multi_items() if k not in ("_format", "_pretty")]
    if not items:
        raise FhirError("invalid", msg("write.conditional_needs_criteria"), code="required")
    return urlencode(items)


@router.put("/{resource_type}")
async def conditional_update_route(resource_type: str, request: Request) -> Response:
    check_accept(request)

    async def handler(req: FhirRequest) -> FhirResponse:
        check_content_type(request)
        criteria = _criteria(request)
        body = await read_json(request, services(request).settings.max_body_bytes)
        return await update.handle_conditional(req, resource_type, criteria, body,
                                               if_match=request.headers.get("if-match"))

    return await serve(request, handler)


@router.patch("/{resource_type}")
async def conditional_patch_route(resource_type: str, request: Request) -> Response:
    check_accept(request)

    async def handler(req: FhirRequest) -> FhirResponse:
        check_content_type(request, patch=True)
        criteria = _criteria(request)
        body = await read_json(request, services(request).settings.max_body_bytes)
        check_patch_body(request, body)
        return await patch.handle(req, resource_type, None, body, criteria=criteria,
                                  if_match=request.headers.get("if-match"))

    return await serve(request, handler)


@router.delete("/{resource_type}")
async def conditional_delete_route(resource_type: str, request: Request) -> Response:
    check_accept(request)
    criteria = _criteria(request)
    return await serve(request, lambda req: delete.handle_conditional(req, resource_type, criteria))
