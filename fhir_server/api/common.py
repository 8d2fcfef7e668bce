"""Helpers every route uses: services, request context, base URL, rendering a FhirResponse."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.negotiation import MEDIA_TYPE, is_pretty
from fhir_server.interactions.base import FhirResponse, Prefer, Services
from fhir_server.jsonio import dumps, loads
from fhir_server.security.context import RequestContext


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def context(request: Request) -> RequestContext:
    """The caller's context. Authentication plugs in here (issue 5); until then every caller acts
    with the server's own system context, and docs/security.md says so."""
    return anonymous_context(request.client.host if request.client else None)


def anonymous_context(client_ip: str | None) -> RequestContext:
    return RequestContext(client_ip=client_ip, subject="anonymous", role="system", scopes=("system/*.cruds",),
                          authenticated=False)


def base_url(request: Request) -> str:
    configured = services(request).settings.base_url
    if configured:
        return configured.rstrip("/")
    return str(request.base_url).rstrip("/")


def prefer(request: Request) -> Prefer:
    return Prefer.parse(request.headers.get("prefer"))


def render(request: Request, resp: FhirResponse) -> Response:
    body = resp.body
    if body is not None and is_pretty(request):
        body = dumps(loads(body), pretty=True)
    if resp.status in (204, 304):
        body = None
    return Response(body, status_code=resp.status, headers=resp.headers,
                    media_type=MEDIA_TYPE if body is not None else None)
