"""Instance-level routes: ``[base]/[type]/[id]...`` (read, vread, update, patch, delete, history).

Each route authenticates and opens the caller's access session (``serve``) before it reads a body."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.body import read_json
from fhir_server.api.common import serve, services
from fhir_server.api.negotiation import check_accept, check_content_type, check_patch_body
from fhir_server.interactions import delete, history, patch, read, update, vread
from fhir_server.interactions.base import FhirResponse
from fhir_server.interactions.request import FhirRequest

router = APIRouter()


@router.get("/{resource_type}/{resource_id}/_history/{version}")
async def vread_route(resource_type: str, resource_id: str, version: str, request: Request) -> Response:
    check_accept(request)
    return await serve(request, lambda req: vread.handle(req, resource_type, resource_id, version))


@router.get("/{resource_type}/{resource_id}/_history")
async def history_route(resource_type: str, resource_id: str, request: Request) -> Response:
    check_accept(request)
    params = dict(request.query_params)
    return await serve(request, lambda req: history.handle(req, resource_type, resource_id, params))


@router.get("/{resource_type}/{resource_id}")
async def read_route(resource_type: str, resource_id: str, request: Request) -> Response:
    check_accept(request)
    headers = request.headers
    return await serve(request, lambda req: read.handle(req, resource_type, resource_id,
                                                        if_none_match=headers.get("if-none-match"),
                                                        if_modified_since=headers.get("if-modified-since")))


@router.put("/{resource_type}/{resource_id}")
async def update_route(resource_type: str, resource_id: str, request: Request) -> Response:
    check_accept(request)

    async def handler(req: FhirRequest) -> FhirResponse:
        check_content_type(request)
        body = await read_json(request, services(request).settings.max_body_bytes)
        return await update.handle(req, resource_type, resource_id, body, if_match=request.headers.get("if-match"))

    return await serve(request, handler)


@router.patch("/{resource_type}/{resource_id}")
async def patch_route(resource_type: str, resource_id: str, request: Request) -> Response:
    check_accept(request)

    async def handler(req: FhirRequest) -> FhirResponse:
        check_content_type(request, patch=True)
        body = await read_json(request, services(request).settings.max_body_bytes)
        check_patch_body(request, body)
        return await patch.handle(req, resource_type, resource_id, body, if_match=request.headers.get("if-match"))

    return await serve(request, handler)


@router.delete("/{resource_type}/{resource_id}")
async def delete_route(resource_type: str, resource_id: str, request: Request) -> Response:
    check_accept(request)
    return await serve(request, lambda req: delete.handle(req, resource_type, resource_id))
