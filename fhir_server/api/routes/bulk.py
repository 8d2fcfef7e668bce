"""Bulk Data routes (Bulk Data Access IG v2): the ``$export`` kick-offs, which need the ``Prefer``
header the generic operation routes do not pass on, and the status and file endpoints, which are
not operations of a type. Registered before ``operations.router`` so these paths win."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from fhir_server.api.body import read_json
from fhir_server.api.common import fhir_request, serve, services
from fhir_server.api.negotiation import check_accept, check_content_type
from fhir_server.interactions.base import FhirResponse
from fhir_server.interactions.request import FhirRequest
from fhir_server.operations.dispatch import run_operation
from fhir_server.operations.export import cancel_export, export_file, export_status

router = APIRouter()
NDJSON = "application/fhir+ndjson"


def ensure_routes(app: FastAPI) -> None:
    """Put these routes in front of the app's own unless it includes them already (for apps built
    before ``api/app.py`` included this router; the generic routes would otherwise shadow them)."""
    if not any(getattr(route, "path", None) == "/$export-status/{job_id}" for route in app.router.routes):
        app.router.routes[0:0] = router.routes


async def _kick_off(request: Request, resource_type: str | None, resource_id: str | None) -> Response:
    check_accept(request)

    async def handler(req: FhirRequest) -> FhirResponse:
        body = None
        if request.method == "POST":
            check_content_type(request)
            body = await read_json(request, services(request).settings.max_body_bytes)
        return await run_operation(req, "system" if resource_type is None else "type" if resource_id is None
                                   else "instance", "export", resource_type, resource_id, request.method,
                                   list(request.query_params.multi_items()), body,
                                   extra={"prefer": request.headers.get("prefer")})

    return await serve(request, handler)


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
    return await serve(request, lambda req: export_status(req, job_id))


@router.delete("/$export-status/{job_id}")
async def delete_export(job_id: str, request: Request) -> Response:
    return await serve(request, lambda req: cancel_export(req, job_id))


@router.get("/$export-file/{job_id}/{name}")
async def download_export_file(job_id: str, name: str, request: Request) -> Response:
    req = await fhir_request(request)
    try:
        path = await export_file(req, job_id, name)
    finally:
        await req.access.flush()
    return FileResponse(path, media_type=NDJSON)
