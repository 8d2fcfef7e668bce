"""Helpers every route uses: the request every interaction runs in (authenticated caller + access
session), the base URL, and rendering a FhirResponse."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.negotiation import MEDIA_TYPE, MEDIA_TYPES, is_pretty, preferred_format
from fhir_server.errors import FhirError
from fhir_server.formats import resource_to_xml
from fhir_server.i18n import msg
from fhir_server.interactions.base import FhirResponse, Prefer, Services
from fhir_server.interactions.request import FhirRequest, open_request
from fhir_server.jsonio import dumps, loads
from fhir_server.security.audit.balp import failed_authentication_event
from fhir_server.security.audit.targets import request_target
from fhir_server.security.auth import AuthError, context_from_request
from fhir_server.security.auth.request import request_id_header
from fhir_server.security.context import RequestContext, next_request_id


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


_OPEN_CONTEXTS: dict[str | None, RequestContext] = {}


def anonymous_context(client_ip: str | None) -> RequestContext:
    """Security switched off (development/test): the caller acts as the server itself. Nothing is
    audited in this mode, so one frozen context per client address serves every request."""
    ctx = _OPEN_CONTEXTS.get(client_ip)
    if ctx is None:
        if len(_OPEN_CONTEXTS) > 10_000:
            _OPEN_CONTEXTS.clear()
        ctx = _OPEN_CONTEXTS[client_ip] = RequestContext(
            client_ip=client_ip, subject="anonymous", role="system", scopes=("system/*.cruds",), authenticated=False)
    return ctx


async def authenticate(svc: Services, headers: Mapping[str, str], client_ip: str | None) -> RequestContext:
    """The caller's context from the bearer token (issue 5 §1); 401 (audited, with the client's
    X-Request-Id) when it is not valid."""
    if svc.verifier is None:
        return anonymous_context(client_ip)
    try:
        return await context_from_request(headers, client_ip, svc.verifier)
    except AuthError as exc:
        request_id = request_id_header(headers) or next_request_id()
        event = failed_authentication_event(exc.reason, client_ip=client_ip, request_id=request_id)
        await svc.enforcer.record_durably([event], [])
        raise FhirError("unauthorized", exc.reason, code="login",
                        headers={"WWW-Authenticate": 'Bearer realm="kzfhir"'}) from exc


def base_url(request: Request) -> str:
    configured = services(request).settings.base_url
    if configured:
        return configured.rstrip("/")
    return str(request.base_url).rstrip("/")


def prefer(request: Request) -> Prefer:
    return Prefer.parse(request.headers.get("prefer"))


async def fhir_request(request: Request) -> FhirRequest:
    """Authenticate and open the caller's access session: the only way a route reaches an interaction."""
    svc = services(request)
    ctx = await authenticate(svc, request.headers, request.client.host if request.client else None)
    return open_request(svc, ctx, base_url=base_url(request), prefer=prefer(request), pretty=is_pretty(request),
                        accept_language=request.headers.get("accept-language"))


async def serve(request: Request, handler: Callable[[FhirRequest], Awaitable[FhirResponse]]) -> Response:
    """Run one interaction in the caller's request: whatever happens, what the session recorded (the
    access, a refusal, a probe) is committed before the answer leaves (AC-14)."""
    req = await fhir_request(request)
    target = request_target(request.method, request.url.path[len(request.scope.get("root_path", "")):],
                            request.url.query)
    try:
        resp = await handler(req)
    except FhirError as exc:
        req.access.ensure_recorded(target, exc.status, exc.message)
        raise
    finally:
        await req.access.flush()
    req.access.ensure_recorded(target, resp.status)
    await req.access.flush()
    return render(request, resp)


def render(request: Request, resp: FhirResponse) -> Response:
    if resp.status in (204, 304) or resp.body is None:
        return Response(None, status_code=resp.status, headers=resp.headers)
    body, media = format_body(request, resp.body)
    return Response(body, status_code=resp.status, headers=resp.headers, media_type=media)


def format_body(request: Request, body: bytes) -> tuple[bytes, str]:
    """A JSON response body in the negotiated format, with its media type. Bodies that are not FHIR
    resources (the Bulk Data status manifest) stay JSON, the only form their specifications define."""
    pretty = is_pretty(request)
    if preferred_format(request) == "xml":
        value = loads(body)
        if isinstance(value, dict) and "resourceType" in value:
            return _xml(value, pretty), MEDIA_TYPES["xml"]
        return (dumps(value, pretty=True) if pretty else body), MEDIA_TYPE
    return (dumps(loads(body), pretty=True) if pretty else body), MEDIA_TYPE


def _xml(value: dict[str, object], pretty: bool) -> bytes:
    try:
        return resource_to_xml(value, pretty=pretty)
    except FhirError as exc:  # stored JSON that XML 1.0 cannot carry (a control character, say)
        raise FhirError("not_acceptable", msg("http.not_xml_writable", detail=exc.message),
                        code="not-supported") from exc
