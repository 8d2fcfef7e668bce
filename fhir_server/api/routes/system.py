"""System-level routes: ``[base]`` (batch/transaction), ``[base]/_history``, ``[base]/metadata``."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.body import read_json
from fhir_server.api.common import base_url, render, serve, services
from fhir_server.api.negotiation import check_accept, check_content_type, is_pretty
from fhir_server.interactions import bundle, history
from fhir_server.interactions.base import FhirResponse
from fhir_server.interactions.request import FhirRequest
from fhir_server.operations import capabilities

router = APIRouter()


@router.get("/metadata")
async def metadata_route(request: Request) -> Response:
    check_accept(request)
    body = capabilities.capability_statement(services(request), base_url(request), pretty=is_pretty(request))
    return render(request, FhirResponse(200, body))


@router.post("/")
async def bundle_route(request: Request) -> Response:
    check_accept(request)

    async def handler(req: FhirRequest) -> FhirResponse:
        check_content_type(request)
        body = await read_json(request, services(request).settings.max_body_bytes)
        return await bundle.handle(req, body)

    return await serve(request, handler)


@router.get("/_history")
async def system_history_route(request: Request) -> Response:
    check_accept(request)
    params = dict(request.query_params)
    return await serve(request, lambda req: history.handle(req, None, None, params))
