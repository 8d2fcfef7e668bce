"""Search routes: ``GET [base]/[type]?``, ``POST [base]/[type]/_search``, ``GET [base]?``,
``POST [base]/_search`` and compartment search ``GET [base]/[compartment]/[id]/[type|*]``
(FHIR R4 http.html §3.1.0.10, search.html §3.1.1)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.body import read_body
from fhir_server.api.common import serve, services
from fhir_server.api.negotiation import check_accept
from fhir_server.errors import FhirError
from fhir_server.interactions import audit_events, search
from fhir_server.interactions.base import FhirResponse, check_id, check_type
from fhir_server.interactions.request import FhirRequest

router = APIRouter()
FORM = "application/x-www-form-urlencoded"


async def _params(request: Request, *, post: bool) -> list[tuple[str, str]]:
    params = list(request.query_params.multi_items())
    if post:
        ctype = (request.headers.get("content-type") or FORM).split(";")[0].strip().lower()
        if ctype != FORM:
            raise FhirError("unsupported_media_type", f"POST _search takes {FORM}, not {ctype!r}",
                            code="not-supported")
        body = await read_body(request, services(request).settings.max_body_bytes)
        try:
            params += parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body.strip()))
        except (UnicodeDecodeError, ValueError) as exc:
            raise FhirError("invalid", f"the _search form body is malformed: {exc}") from exc
    return [(k, v) for k, v in params if k not in ("_format", "_pretty")]


async def _search(request: Request, resource_type: str | None, compartment: tuple[str, str] | None, *,
                  post: bool) -> Response:
    check_accept(request)
    svc = services(request)

    async def handler(req: FhirRequest) -> FhirResponse:
        if resource_type is not None:
            check_type(svc, resource_type)
        params = await _params(request, post=post)
        if resource_type == "AuditEvent" and compartment is None and req.access.enabled:
            return await audit_events.search(req, params)
        body = await search.handle(req, resource_type=resource_type, params=params, compartment=compartment,
                                   strict=req.prefer.handling == "strict")
        return FhirResponse(200, body)

    return await serve(request, handler)


@router.get("/")
async def system_search_route(request: Request) -> Response:
    return await _search(request, None, None, post=False)


@router.post("/_search")
async def system_search_post_route(request: Request) -> Response:
    return await _search(request, None, None, post=True)


@router.get("/{resource_type}")
async def type_search_route(resource_type: str, request: Request) -> Response:
    return await _search(request, resource_type, None, post=False)


@router.post("/{resource_type}/_search")
async def type_search_post_route(resource_type: str, request: Request) -> Response:
    return await _search(request, resource_type, None, post=True)


@router.get("/{compartment_type}/{compartment_id}/{resource_type}")
async def compartment_search_route(compartment_type: str, compartment_id: str, resource_type: str,
                                   request: Request) -> Response:
    check_type(services(request), compartment_type)
    check_id(compartment_id)
    target = None if resource_type == "*" else resource_type
    return await _search(request, target, (compartment_type, compartment_id), post=False)
