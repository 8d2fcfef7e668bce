"""Instance-level routes: ``[base]/[type]/[id]...`` (read, vread, update, patch, delete, history)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.body import read_json
from fhir_server.api.common import base_url, context, prefer, render, services
from fhir_server.api.negotiation import check_accept, check_content_type, is_pretty
from fhir_server.interactions import delete, history, patch, read, update, vread

router = APIRouter()


@router.get("/{resource_type}/{resource_id}/_history/{version}")
async def vread_route(resource_type: str, resource_id: str, version: str, request: Request) -> Response:
    check_accept(request)
    ctx = await context(request)
    resp = await vread.handle(services(request), ctx, resource_type, resource_id, version,
                              base_url=base_url(request))
    return render(request, resp)


@router.get("/{resource_type}/{resource_id}/_history")
async def history_route(resource_type: str, resource_id: str, request: Request) -> Response:
    check_accept(request)
    ctx = await context(request)
    resp = await history.handle(services(request), ctx, resource_type, resource_id,
                                dict(request.query_params), base_url=base_url(request), pretty=is_pretty(request))
    return render(request, resp)


@router.get("/{resource_type}/{resource_id}")
async def read_route(resource_type: str, resource_id: str, request: Request) -> Response:
    check_accept(request)
    ctx = await context(request)
    headers = request.headers
    resp = await read.handle(services(request), ctx, resource_type, resource_id,
                             base_url=base_url(request), if_none_match=headers.get("if-none-match"),
                             if_modified_since=headers.get("if-modified-since"))
    return render(request, resp)


@router.put("/{resource_type}/{resource_id}")
async def update_route(resource_type: str, resource_id: str, request: Request) -> Response:
    check_accept(request)
    ctx = await context(request)
    check_content_type(request)
    svc = services(request)
    body = await read_json(request, svc.settings.max_body_bytes)
    resp = await update.handle(svc, ctx, resource_type, resource_id, body, base_url=base_url(request),
                               prefer=prefer(request), if_match=request.headers.get("if-match"))
    return render(request, resp)


@router.patch("/{resource_type}/{resource_id}")
async def patch_route(resource_type: str, resource_id: str, request: Request) -> Response:
    check_accept(request)
    ctx = await context(request)
    check_content_type(request, patch=True)
    svc = services(request)
    body = await read_json(request, svc.settings.max_body_bytes)
    resp = await patch.handle(svc, ctx, resource_type, resource_id, body, base_url=base_url(request),
                              prefer=prefer(request), if_match=request.headers.get("if-match"))
    return render(request, resp)


@router.delete("/{resource_type}/{resource_id}")
async def delete_route(resource_type: str, resource_id: str, request: Request) -> Response:
    check_accept(request)
    ctx = await context(request)
    resp = await delete.handle(services(request), ctx, resource_type, resource_id)
    return render(request, resp)
