"""The HTTP side: a small Starlette app per mount point, driving authlib through ``SmartAuthorizationServer``.
authlib and the registry are synchronous (SQLite, scrypt), so each call runs on a worker thread.

``/auth``: ``authorize`` (GET or POST: the sign-in page, then the redirect with a code), ``token``, ``revoke``,
``introspect``, ``jwks``, ``launch`` (an EHR registers a launch context) and the issuer's
``.well-known/openid-configuration``. ``/.well-known``: ``smart-configuration`` and ``openid-configuration``
at the FHIR base URL, where SMART apps look for them."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl

from authlib.oauth2 import OAuth2Error
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from fhir_server.identity import audit, discovery
from fhir_server.identity.issuer import LAUNCH_SECONDS, IdentityConfig
from fhir_server.identity.models import Principal
from fhir_server.identity.pages import HEADERS, error_page, sign_in_page
from fhir_server.identity.registry import Registry
from fhir_server.identity.server import FormRequest, SmartAuthorizationServer
from fhir_server.identity.signin import SignInError, SignInMethod
from fhir_server.security.auth.errors import AuthError
from fhir_server.security.context import next_request_id
from fhir_server.security.refs import relative_ref
from fhir_server.security.roles import ADMIN, PRACTITIONER, SYSTEM

log = logging.getLogger("kzfhir.identity")
MAX_FORM_BYTES = 64 * 1024
_SIGN_IN_FIELDS = {"signin_method", "username", "password"}
LAUNCH_ROLES = frozenset({PRACTITIONER, SYSTEM, ADMIN})  # who may open an EHR launch context
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _response(result: tuple[int, Any, list[tuple[str, str]]]) -> Response:
    status, body, headers = result
    extra = dict(headers)
    if isinstance(body, dict):
        extra.pop("Content-Type", None)
        return JSONResponse(body, status_code=status, headers=extra)
    return Response(body or b"", status_code=status, headers=extra)


class AuthRoutes:
    def __init__(self, config: IdentityConfig, registry: Registry, server: SmartAuthorizationServer,
                 methods: Sequence[SignInMethod], services: Callable[[], Any]) -> None:
        self.config, self.registry, self.server = config, registry, server
        self.methods = {method.name: method for method in methods}
        self.services = services  # the FHIR app's Services: its verifier (/launch) and enforcer (audit)

    def verifier(self) -> Any:
        return self.services().verifier

    async def _audit(self, request: Request, make: Callable[..., dict[str, Any] | None], *args: Any,
                     **kwargs: Any) -> None:
        """Record an AuditEvent in the server's hash chain (AC-14), unless security is off."""
        enforcer = self.services().enforcer
        if enforcer is None or not enforcer.enabled:
            return
        request_id = getattr(request.state, "request_id", None) or next_request_id()
        event = make(*args, client_ip=request.client.host if request.client else None, request_id=request_id,
                     **kwargs)
        if event is not None:
            await enforcer.record_durably([event], [])

    # -- parsing --------------------------------------------------------------------------------------------
    async def _pairs(self, request: Request) -> list[tuple[str, str]]:
        if request.method == "GET":
            return parse_qsl(request.url.query, keep_blank_values=True)
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise ValueError("request body too large")
        return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)

    def _oauth(self, request: Request, pairs: list[tuple[str, str]]) -> FormRequest:
        """The request as authlib sees it, at its public URL (the issuer's): behind a TLS-terminating proxy
        the request itself arrives over http, and authlib's https check is about what clients use."""
        headers = {k.title(): v for k, v in request.headers.items()}
        uri = f"{self.config.issuer}/{request.url.path.rsplit('/', 1)[-1]}"
        return FormRequest(request.method, uri, pairs, headers, allow_http=self.config.allow_http)

    # -- /authorize -----------------------------------------------------------------------------------------
    async def authorize(self, request: Request) -> Response:
        try:
            pairs = await self._pairs(request)
        except ValueError as error:
            return HTMLResponse(error_page(str(error)), status_code=413, headers=HEADERS)
        fields = dict(pairs)
        try:
            oauth = self._oauth(request, [(k, v) for k, v in pairs if k not in _SIGN_IN_FIELDS])
        except OAuth2Error as error:  # plain http where it is not allowed: never redirect from there
            return HTMLResponse(error_page(f"{error.error}: {error.description}"), status_code=400, headers=HEADERS)
        try:
            grant = await asyncio.to_thread(self.server.get_consent_grant, oauth)
        except OAuth2Error as error:
            log.info("authorize refused: %s (%s)", error.error, error.description)
            if error.redirect_uri:
                return _response(self.server.handle_error_response(oauth, error))
            return HTMLResponse(error_page(f"{error.error}: {error.description or ''}".strip(": ")),
                                status_code=400, headers=HEADERS)
        request_fields = {k: v for k, v in fields.items() if k not in _SIGN_IN_FIELDS}
        method = self.methods.get(fields.get("signin_method", ""))
        if request.method == "POST" and method is not None:
            try:
                user = await asyncio.to_thread(method.sign_in, fields)
            except SignInError as error:
                client_id = grant.client.get_client_id()
                log.info("sign-in failed for client %s (%s)", client_id, method.name)
                await self._audit(request, audit.failure, f"sign-in failed ({method.name}) for client {client_id}")
                return self._page(grant, request_fields, str(error), 401)
            principal = Principal(user, None, int(time.time()))
            log.info("signed in %s (%s) for client %s", user.username, method.name, grant.client.get_client_id())
            await self._audit(request, audit.success, f"signed in ({method.name})", who=user.fhir_user,
                              subject=user.username, client_id=grant.client.get_client_id())
            result = await asyncio.to_thread(self.server.create_authorization_response, oauth, principal, grant)
            return _response(result)
        return self._page(grant, request_fields, None, 200)

    def _page(self, grant: Any, fields: dict[str, str], error: str | None, status: int) -> Response:
        client = grant.client.record
        page = sign_in_page(client.name, grant.request.scope or "", fields, list(self.methods.values()), error)
        return HTMLResponse(page, status_code=status, headers=HEADERS)

    # -- token, revocation, introspection -------------------------------------------------------------------
    async def _endpoint(self, request: Request, call: Callable[[FormRequest], Any]) -> Response:
        try:
            oauth = self._oauth(request, await self._pairs(request))
        except ValueError as error:
            return JSONResponse({"error": "invalid_request", "error_description": str(error)}, status_code=413)
        except OAuth2Error as error:  # e.g. plain http where it is not allowed
            return JSONResponse(dict(error.get_body()), status_code=error.status_code, headers=NO_STORE)
        return _response(await asyncio.to_thread(call, oauth))

    async def token(self, request: Request) -> Response:
        """The token endpoint; every token issued and every request refused is audited."""
        try:
            pairs = await self._pairs(request)
            oauth = self._oauth(request, pairs)
        except ValueError as error:
            return JSONResponse({"error": "invalid_request", "error_description": str(error)}, status_code=413)
        except OAuth2Error as error:
            return JSONResponse(dict(error.get_body()), status_code=error.status_code, headers=NO_STORE)
        status, body, headers = await asyncio.to_thread(self.server.create_token_response, oauth)
        grant_type = dict(pairs).get("grant_type") or "token request"
        if status == 200 and isinstance(body, dict):
            await self._audit(request, audit.issued, body, grant_type)
        else:
            detail = body if isinstance(body, dict) else {}
            await self._audit(request, audit.failure, f"{grant_type} refused: {detail.get('error', 'error')} "
                              f"{detail.get('error_description') or ''}".strip())
        return _response((status, body, headers))

    async def revoke(self, request: Request) -> Response:
        return await self._endpoint(request, lambda r: self.server.create_endpoint_response("revocation", r))

    async def introspect(self, request: Request) -> Response:
        return await self._endpoint(request, lambda r: self.server.create_endpoint_response("introspection", r))

    # -- keys, discovery ------------------------------------------------------------------------------------
    async def jwks(self, request: Request) -> Response:
        return JSONResponse(self.server.keys.public_jwks(), headers={"Cache-Control": "max-age=300"})

    async def smart_configuration(self, request: Request) -> Response:
        return JSONResponse(discovery.smart_configuration(self.config))

    async def openid_configuration(self, request: Request) -> Response:
        return JSONResponse(discovery.openid_configuration(self.config))

    # -- EHR launch -----------------------------------------------------------------------------------------
    async def launch(self, request: Request) -> Response:
        """An EHR (a practitioner's or an MIS's token) opens a launch context for a patient; the app it
        launches then sends ``launch=<id>`` to /authorize and gets that patient as its context."""
        verifier = self.verifier()
        if verifier is None:
            return JSONResponse({"error": "unavailable", "error_description": "security is off"}, status_code=503)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        try:
            if scheme.lower() != "bearer":
                raise AuthError("send an OAuth2 bearer token")
            caller = await verifier.verify(token.strip())
        except AuthError as error:
            return JSONResponse({"error": "invalid_token", "error_description": str(error)}, status_code=401,
                                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if caller.role not in LAUNCH_ROLES:
            return JSONResponse({"error": "insufficient_scope",
                                 "error_description": "only practitioners and systems open launch contexts"},
                                status_code=403)
        try:
            fields = dict(await self._pairs(request))
        except ValueError as error:
            return JSONResponse({"error": "invalid_request", "error_description": str(error)}, status_code=413)
        raw = fields.get("patient", "")
        patient = relative_ref(raw if "/" in raw else f"Patient/{raw}") if raw else None
        if patient is None or not patient.startswith("Patient/"):
            return JSONResponse({"error": "invalid_request", "error_description": "patient=Patient/<id> needed"},
                                status_code=400)
        launch = secrets.token_urlsafe(24)
        await asyncio.to_thread(self.registry.save_launch, launch, patient, caller.subject or "?",
                                int(time.time()) + LAUNCH_SECONDS)
        return JSONResponse({"launch": launch, "patient": patient.removeprefix("Patient/"),
                             "expires_in": LAUNCH_SECONDS}, status_code=201, headers=NO_STORE)

    # -- the two ASGI apps ------------------------------------------------------------------------------------
    def auth_app(self) -> Starlette:
        return Starlette(routes=[
            Route("/authorize", self.authorize, methods=["GET", "POST"]),
            Route("/token", self.token, methods=["POST"]),
            Route("/revoke", self.revoke, methods=["POST"]),
            Route("/introspect", self.introspect, methods=["POST"]),
            Route("/jwks", self.jwks, methods=["GET"]),
            Route("/launch", self.launch, methods=["POST"]),
            Route("/.well-known/openid-configuration", self.openid_configuration, methods=["GET"]),
        ])

    def well_known_app(self) -> Starlette:
        return Starlette(routes=[
            Route("/smart-configuration", self.smart_configuration, methods=["GET"]),
            Route("/openid-configuration", self.openid_configuration, methods=["GET"]),
        ])


Endpoint = Callable[[Request], Awaitable[Response]]
