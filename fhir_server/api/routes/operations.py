"""Operation routes (``$name``) at system, type and instance level, dispatched through
``operations/registry.py``. Registered before the instance routes so ``[type]/$op`` is never an id."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.body import read_json
from fhir_server.api.common import base_url, context, render, services
from fhir_server.api.negotiation import check_accept, check_content_type, is_pretty
from fhir_server.interactions.access import Action, AuditTarget, session
from fhir_server.interactions.base import check_id, check_type
from fhir_server.operations import load_all
from fhir_server.operations.registry import OperationCall, find

router = APIRouter()
load_all()


async def _dispatch(request: Request, level: str, name: str, resource_type: str | None,
                    resource_id: str | None) -> Response:
    check_accept(request)
    ctx = await context(request)
    svc = services(request)
    if resource_type is not None:
        check_type(svc, resource_type)
    if resource_id is not None:
        check_id(resource_id)
    handler = find(level, resource_type, name)
    # Every operation passes the type-level gate here, so none can escape the policy (issue 5 §2);
    # operations that return stored data also check each resource (see the operation modules).
    await session(svc, ctx).start(Action.OPERATION, resource_type,
                                  AuditTarget("operation", resource_type, resource_id),
                                  operation=name, instance_level=resource_id is not None)
    body = None
    if request.method == "POST":
        check_content_type(request)
        body = await read_json(request, svc.settings.max_body_bytes)
    call = OperationCall(svc, ctx, name, resource_type, resource_id, request.method,
                         list(request.query_params.multi_items()), body, base_url(request), is_pretty(request))
    return render(request, await handler(call))


@router.api_route("/${name}", methods=["GET", "POST"])
async def system_operation(name: str, request: Request) -> Response:
    return await _dispatch(request, "system", name, None, None)


@router.api_route("/{resource_type}/${name}", methods=["GET", "POST"])
async def type_operation(resource_type: str, name: str, request: Request) -> Response:
    return await _dispatch(request, "type", name, resource_type, None)


@router.api_route("/{resource_type}/{resource_id}/${name}", methods=["GET", "POST"])
async def instance_operation(resource_type: str, resource_id: str, name: str, request: Request) -> Response:
    return await _dispatch(request, "instance", name, resource_type, resource_id)
