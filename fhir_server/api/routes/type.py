"""Type-level routes: ``[base]/[type]`` (create, conditional update/delete, history, search)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.body import read_json
from fhir_server.api.common import base_url, context, prefer, render, services
from fhir_server.api.negotiation import check_accept, check_content_type, is_pretty
from fhir_server.errors import FhirError
from fhir_server.interactions import create, delete, history, update

router = APIRouter()


@router.get("/{resource_type}/_history")
async def type_history_route(resource_type: str, request: Request) -> Response:
    check_accept(request)
    ctx = await context(request)
    resp = await history.handle(services(request), ctx, resource_type, None,
                                dict(request.query_params), base_url=base_url(request), pretty=is_pretty(request))
    return render(request, resp)


@router.post("/{resource_type}")
async def create_route(resource_type: str, request: Request) -> Response:
    check_accept(request)
    ctx = await context(request)
    check_content_type(request)
    svc = services(request)
    body = await read_json(request, svc.settings.max_body_bytes)
    resp = await create.handle(svc, ctx, resource_type, body, base_url=base_url(request),
                               prefer=prefer(request), if_none_exist=request.headers.get("if-none-exist"))
    return render(request, resp)


def _criteria(request: Request) -> str:
    items = [(k, v) for k, v in request.query_params.multi_items() if k not in ("_format", "_pretty")]
    if not items:
        raise FhirError("invalid", "a conditional interaction needs search criteria in the URL", code="required")
    return urlencode(items)


@router.put("/{resource_type}")
async def conditional_update_route(resource_type: str, request: Request) -> Response:
    check_accept(request)
    ctx = await context(request)
    check_content_type(request)
    svc = services(request)
    criteria = _criteria(request)
    body = await read_json(request, svc.settings.max_body_bytes)
    resp = await update.handle_conditional(svc, ctx, resource_type, criteria, body,
                                           base_url=base_url(request), prefer=prefer(request),
                                           if_match=request.headers.get("if-match"))
    return render(request, resp)


@router.delete("/{resource_type}")
async def conditional_delete_route(resource_type: str, request: Request) -> Response:
    check_accept(request)
    ctx = await context(request)
    resp = await delete.handle_conditional(services(request), ctx, resource_type, _criteria(request))
    return render(request, resp)
