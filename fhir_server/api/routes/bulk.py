"""Bulk Data routes (Bulk Data Access IG v2): the ``$export`` kick-offs, which need the ``Prefer``
header the generic operation routes do not pass on, and the status and file endpoints, which are
not operations of a type. Registered before ``operations.router`` so these paths win."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from fhir_server.api.body import read_json
from fhir_server.api.common import base_url, context, render, services
from fhir_server.api.negotiation import check_accept, check_content_type, is_pretty
from fhir_server.interactions.base import check_id
from fhir_server.operations.export import cancel_export, export_file, export_operation, export_status
from fhir_server.operations.registry import OperationCall

router = APIRouter()
NDJSON = "application/fhir+ndjson"


def ensure_routes(app: FastAPI) -> None:
    """Put these routes in front of the app's own unless it includes them already (for apps built
    before ``api/app.py`` included this router; the generic routes would otherwise shadow them)."""
    if not any(getattr(route, "path", None) == "/$export-status/{job_id}" for route in app.router.routes):
        app.router.routes[0:0] = router.routes


async def _kick_off(request: Request, resource_type: str | None, resource_id: str | None) -> Response:
    check_accept(request)
    ctx = await context(request)
    svc = services(request)
    if resource_id is not None:
        check_id(resource_id)
    body = None
    if request.method == "POST":
        check_content_type(request)
        body = await read_json(request, svc.settings.max_body_bytes)
    call = OperationCall(svc, ctx, "export", resource_type, resource_id, request.method,
                         list(request.query_params.multi_items()), body, base_url(request), is_pretty(request),
                         extra={"prefer": request.headers.get("prefer")})
    return render(request, await export_operation(call))


@router.api_route("/$export", methods=["GET", "POST"])
async def system_export(request: Request) -> Response:
    return await _kick_off(request, None, None)


@router.api_route("/Patient/$export", methods=["GET", "POST"])
async def patient_export(request: Request) -> Response:
    return await _kick_off(request, "Patient", None)


@router.api_route("/Group/{group_id}/$export", methods=["GET", "POST"])
async def group_export(group_id: str, request: Request) -> Response:
    return await _kick_off(request, "Group", group_id)


@router.get("/$export-status/{job_id}")
async def poll_export(job_id: str, request: Request) -> Response:
    ctx = await context(request)
    return render(request, await export_status(services(request), ctx, job_id, base_url(request)))


@router.delete("/$export-status/{job_id}")
async def delete_export(job_id: str, request: Request) -> Response:
    ctx = await context(request)
    return render(request, await cancel_export(services(request), ctx, job_id))


@router.get("/$export-file/{job_id}/{name}")
async def download_export_file(job_id: str, name: str, request: Request) -> Response:
    ctx = await context(request)
    path = await export_file(services(request), ctx, job_id, name)
    return FileResponse(path, media_type=NDJSON)
