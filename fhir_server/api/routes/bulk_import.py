"""Bulk Data ``$import`` routes: the kick-off, which needs the ``Prefer`` header and accepts NDJSON bodies the
generic operation routes do not, and the status and error-file endpoints (operations/import_operation.py).
Included before ``operations.router`` so these paths win."""

from __future__ import annotations

import contextlib
import os
import uuid

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from fhir_server.api.body import read_json
from fhir_server.api.common import fhir_request, serve, services
from fhir_server.api.negotiation import check_accept, check_content_type
from fhir_server.errors import FhirError
from fhir_server.interactions.base import FhirResponse
from fhir_server.interactions.request import FhirRequest
from fhir_server.operations.dispatch import run_operation
from fhir_server.operations.import_jobs import imports_root
from fhir_server.operations.import_operation import cancel_import, import_file, import_status

router = APIRouter()
NDJSON_TYPES = ("application/fhir+ndjson", "application/ndjson", "application/x-ndjson")


def _is_ndjson(request: Request) -> bool:
    ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    return ctype in NDJSON_TYPES


async def _stream_to_file(request: Request, limit: int) -> os.PathLike[str]:
    """The posted NDJSON, streamed to a private file beside the jobs (never held in memory whole)."""
    from pathlib import Path

    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise FhirError("too_large", f"the NDJSON body is over the limit of {limit} bytes", code="too-costly")
    root = imports_root(services(request).settings.database)
    root.mkdir(parents=True, mode=0o700, exist_ok=True)
    path = Path(root) / f"upload-{uuid.uuid4().hex}.ndjson"
    size = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise FhirError("too_large", f"the NDJSON body is over the limit of {limit} bytes "
                                    "(settings import_max_file_bytes, max_body_bytes)", code="too-costly")
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if size == 0:
        path.unlink(missing_ok=True)
        raise FhirError("invalid", "the request body is empty", code="structure")
    return path


@router.post("/$import")
async def kick_off(request: Request) -> Response:
    check_accept(request)

    async def handler(req: FhirRequest) -> FhirResponse:
        settings = services(request).settings
        extra: dict[str, object] = {"prefer": request.headers.get("prefer")}
        body = None
        if _is_ndjson(request):
            extra["posted"] = await _stream_to_file(request, min(settings.import_max_file_bytes,
                                                                 settings.max_body_bytes))
        else:
            check_content_type(request)
            body = await read_json(request, settings.max_body_bytes)
        try:
            return await run_operation(req, "system", "import", None, None, "POST",
                                       list(request.query_params.multi_items()), body, extra=extra)
        finally:
            posted = extra.get("posted")
            if isinstance(posted, os.PathLike):
                with contextlib.suppress(FileNotFoundError):  # not taken over by a job
                    os.unlink(posted)

    return await serve(request, handler)


@router.get("/$import-status/{job_id}")
async def poll_import(job_id: str, request: Request) -> Response:
    return await serve(request, lambda req: import_status(req, job_id))


@router.delete("/$import-status/{job_id}")
async def delete_import(job_id: str, request: Request) -> Response:
    return await serve(request, lambda req: cancel_import(req, job_id))


@router.get("/$import-file/{job_id}/{name}")
async def download_import_file(job_id: str, name: str, request: Request) -> Response:
    req = await fhir_request(request)
    try:
        path = await import_file(req, job_id, name)
    finally:
        await req.access.flush()
    return FileResponse(path, media_type="application/fhir+ndjson")
