"""The HTTP side: a small Starlette app per mount point, driving authlib through ``SmartAuthorizationServer``.
authlib and the registry are synchronous (SQLite, scrypt), so each call runs on a worker thread.

``/auth``: ``authorize`` (GET or POST: the sign-in page, then the redirect with a code), ``token``, ``revoke``,
``introspect``, ``jwks``, ``launch`` (an EHR registers a launch context) and the issuer's
``.well-known/openid-configuration``. ``/.well-known``: ``smart-configuration`` and ``openid-configuration``
at the FHIR base URL, where SMART apps look for them."""

from __future__ import annotations

import asyncio
import json
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

from fhir_server.identity import audit, consent, discovery
from fhir_server.identity.browser import FIELD, BrowserGuard
from fhir_server.identity.federation import OidcFederation
from fhir_server.identity.issuer import LAUNCH_SECONDS, PENDING_SECONDS, IdentityConfig
from fhir_server.identity.models import Principal
from fhir_server.identity.pages import HEADERS, consent_page, error_page, message_page, sign_in_page
from fhir_server.identity.registry import Registry, User
from fhir_server.identity.server import FormRequest, SmartAuthorizationServer
from fhir_server.identity.signin import SignInError, SignInMethod, UnregisteredIin
from fhir_server.search.parse import parse_search
from fhir_server.security.auth.errors import AuthError
from fhir_server.security.context import next_request_id
from fhir_server.security.refs import IIN_SYSTEM, relative_ref
from fhir_server.security.roles import ADMIN, PRACTITIONER, SYSTEM

log = logging.getLogger("kzfhir.identity")
MAX_FORM_BYTES = 64 * 1024
#: what the browser posts besides the authorization request: never passed on to authlib
_BROWSER_FIELDS = frozenset({"signin_method", "username", "password", FIELD, "consent_ticket", "scope_ok",
                             "decision", "eds_challenge", "eds_cms"})
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
        self.guard = BrowserGuard(config, registry)
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

    def _oauth(self, request: Request, pairs: list[tuple[str, str]], endpoint: str | None = None) -> FormRequest:
        """The request as authlib sees it, at its public URL (the issuer's): behind a TLS-terminating proxy
        the request itself arrives over http, and authlib's https check is about what clients use."""
        headers = {k.title(): v for k, v in request.headers.items()}
        uri = f"{self.config.issuer}/{endpoint or request.url.path.rsplit('/', 1)[-1]}"
        return FormRequest(request.method, uri, pairs, headers, allow_http=self.config.allow_http)

    # -- /authorize -----------------------------------------------------------------------------------------
    async def authorize(self, request: Request) -> Response:
        """GET/POST: the sign-in page; POST with ``signin_method``: a sign-in; POST with ``consent_ticket``: the
        consent screen's answer. Every post must carry the browser's login-CSRF token (browser.py)."""
        try:
            pairs = await self._pairs(request)
        except ValueError as error:
            return HTMLResponse(error_page(str(error)), status_code=413, headers=HEADERS)
        fields = dict(pairs)
        if request.method == "POST" and "consent_ticket" in fields:
            return await self._consent_answer(request, fields, pairs)
        request_pairs = [(k, v) for k, v in pairs if k not in _BROWSER_FIELDS]
        try:
            oauth = self._oauth(request, request_pairs)
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
        request_fields = dict(request_pairs)
        method = self.methods.get(fields.get("signin_method", ""))
        if request.method != "POST" or method is None:
            return self._page(request, grant, request_fields, None, 200)
        client_id = grant.client.get_client_id()
        if not self.guard.check(request, fields.get(FIELD, "")):
            log.info("sign-in post without a valid CSRF token for client %s", client_id)
            await self._audit(request, audit.failure, f"sign-in refused (login CSRF token) for client {client_id}")
            return self._page(request, grant, request_fields, "The sign-in form expired. Please try again.", 403)
        ip = request.client.host if request.client else None
        username = fields.get("username") if method.name == "password" else None
        if await asyncio.to_thread(self.guard.limited, ip, username):
            await self._audit(request, audit.failure, f"sign-in refused (too many failed attempts) for client "
                              f"{client_id}")
            page = self._page(request, grant, request_fields, "Too many failed sign-ins. Please try again later.",
                              429)
            page.headers["Retry-After"] = str(self.config.failure_window_seconds)
            return page
        begin = getattr(method, "begin", None)
        if begin is not None:  # a federated method: the person signs in at the external IdP and comes back
            browser, _ = self.guard.browser_id(request)
            try:
                location = await asyncio.to_thread(begin, request_pairs, self.guard.binding(browser))
            except SignInError as error:
                await self._audit(request, audit.failure, f"sign-in failed ({method.name}): {error}")
                return self._page(request, grant, request_fields, str(error), 502)
            return Response(status_code=303, headers={**HEADERS, "Location": location})
        try:
            try:
                user = await asyncio.to_thread(method.sign_in, fields)
            except UnregisteredIin as unknown:
                user = await self.user_for_iin(unknown)
        except SignInError as error:
            await asyncio.to_thread(self.guard.failed, ip, username)
            log.info("sign-in failed for client %s (%s): %s", client_id, method.name, error)
            await self._audit(request, audit.failure, f"sign-in failed ({method.name}) for client {client_id}: "
                              f"{error}")
            return self._page(request, grant, request_fields, str(error), 401)
        if username:
            await asyncio.to_thread(self.guard.succeeded, username)
        return await self.signed_in(request, user, method.name, request_pairs, grant)

    async def user_for_iin(self, unknown: UnregisteredIin) -> User:
        """A proven IIN without a user registered by it: the Patient or Practitioner with that IIN identifier
        (exactly one), and the one user registered with that resource as fhirUser; else the error stands."""
        found: list[str] = []
        store = self.services().store
        for resource_type in ("Patient", "Practitioner"):
            query = parse_search(resource_type, [("identifier", f"{IIN_SYSTEM}|{unknown.iin}")], strict=True)
            found += [f"{rtype}/{rid}" for rtype, rid in await store.search_ids(query, 2)]
        user = await asyncio.to_thread(self.registry.user_by, fhir_user=found[0]) if len(found) == 1 else None
        if user is None or user.disabled or (user.iin is not None and user.iin != unknown.iin):
            raise unknown
        return user

    async def signed_in(self, request: Request, user: User, method: str, request_pairs: list[tuple[str, str]],
                        grant: Any) -> Response:
        """After a sign-in (any method): the remembered consent, or the consent screen."""
        client_id = grant.client.get_client_id()
        log.info("signed in %s (%s) for client %s", user.username, method, client_id)
        await self._audit(request, audit.success, f"signed in ({method})", who=user.fhir_user,
                          subject=user.username, client_id=client_id)
        asked = (grant.client.get_allowed_scope(grant.request.scope) or "").split()
        offer = consent.choice(asked)
        auth_time = int(time.time())
        known = consent.remembered(offer, await asyncio.to_thread(self.registry.consent, user.username, client_id))
        if known is not None:
            return await self._issue(request, request_pairs, user, auth_time, consent.ordered(asked, known))
        browser, new = self.guard.browser_id(request)
        ticket = secrets.token_urlsafe(32)
        await asyncio.to_thread(self.registry.save_pending, ticket, "consent", {
            "username": user.username, "client_id": client_id, "auth_time": auth_time, "pairs": request_pairs,
            "asked": asked, "browser": self.guard.binding(browser)}, auth_time + PENDING_SECONDS)
        page = HTMLResponse(consent_page(grant.client.record.name, user.username, offer, ticket,
                                         self.guard.token(browser)), headers=HEADERS)
        if new:
            self.guard.set_cookie(page, browser)
        return page

    async def _consent_answer(self, request: Request, fields: dict[str, str],
                              posted: list[tuple[str, str]]) -> Response:
        """The consent screen's post. The authorization request comes from the server-side record, never from
        the form, so the form can only choose among the scopes it was shown."""
        ticked = [v for k, v in posted if k == "scope_ok"]
        if not self.guard.check(request, fields.get(FIELD, "")):
            return HTMLResponse(message_page("Sign-in expired", "The consent form expired. Please sign in again."),
                                status_code=403, headers=HEADERS)
        pending = await asyncio.to_thread(self.registry.take_pending, fields["consent_ticket"], "consent")
        browser, _ = self.guard.browser_id(request)
        if pending is None or pending.get("browser") != self.guard.binding(browser):
            return HTMLResponse(message_page("Sign-in expired", "This consent form was already answered or has "
                                             "expired. Please sign in again."), status_code=400, headers=HEADERS)
        user = await asyncio.to_thread(self.registry.user, pending["username"])
        pairs = [(str(k), str(v)) for k, v in pending["pairs"]]
        if user is None or user.disabled:
            return HTMLResponse(message_page("Sign-in refused", "This account cannot sign in."), status_code=403,
                                headers=HEADERS)
        asked = [str(s) for s in pending["asked"]]
        offer = consent.choice(asked)
        granted = consent.approved(offer, ticked)
        if fields.get("decision") != "approve" or not granted:
            await self._audit(request, audit.failure, f"access denied by the user for client {pending['client_id']}")
            return await self._issue(request, pairs, None, int(pending["auth_time"]), None)
        await asyncio.to_thread(self.registry.save_consent, user.username, pending["client_id"], offer.all, granted)
        await self._audit(request, audit.success, f"consent given: {consent.ordered(asked, granted)}",
                          who=user.fhir_user, subject=user.username, client_id=pending["client_id"])
        return await self._issue(request, pairs, user, int(pending["auth_time"]), consent.ordered(asked, granted))

    async def _issue(self, request: Request, pairs: list[tuple[str, str]], user: User | None, auth_time: int,
                     scope: str | None) -> Response:
        """The redirect back to the app: a code for the approved scope, or ``access_denied`` without a user."""
        scoped = [(k, scope if k == "scope" and scope is not None else v) for k, v in pairs]
        try:
            oauth = self._oauth(request, scoped, endpoint="authorize")
            grant = await asyncio.to_thread(self.server.get_consent_grant, oauth)
        except OAuth2Error as error:
            if error.redirect_uri:
                return _response(self.server.handle_error_response(oauth, error))
            return HTMLResponse(error_page(f"{error.error}: {error.description or ''}".strip(": ")),
                                status_code=400, headers=HEADERS)
        principal = Principal(user, None, auth_time) if user is not None else None
        result = await asyncio.to_thread(self.server.create_authorization_response, oauth, principal, grant)
        return _response(result)

    async def federation_callback(self, request: Request) -> Response:
        """Where the external OpenID Connect provider sends the person back (federation.py)."""
        method = self.methods.get(OidcFederation.name)
        if not isinstance(method, OidcFederation):
            return HTMLResponse(error_page("no identity provider is configured"), status_code=404, headers=HEADERS)
        params = dict(request.query_params)
        browser, _ = self.guard.browser_id(request)
        try:
            record = await asyncio.to_thread(method.pending, params.get("state", ""), self.guard.binding(browser))
        except SignInError as error:
            await self._audit(request, audit.failure, f"sign-in failed ({method.name}): {error}")
            return HTMLResponse(message_page("Sign-in failed", str(error)), status_code=400, headers=HEADERS)
        pairs = [(str(k), str(v)) for k, v in record["pairs"]]
        client_id = dict(pairs).get("client_id", "?")
        if "error" in params or not params.get("code"):
            await self._audit(request, audit.failure, f"sign-in failed ({method.name}) for client {client_id}: "
                              f"the provider answered {params.get('error', 'without a code')[:64]}")
            return await self._issue(request, pairs, None, int(time.time()), None)
        ip = request.client.host if request.client else None
        try:
            completed = await asyncio.to_thread(method.complete, record, params["code"])
            user = completed.user or await self.user_for_iin(UnregisteredIin(completed.iin))
        except SignInError as error:
            await asyncio.to_thread(self.guard.failed, ip, None)
            log.info("federated sign-in failed for client %s: %s", client_id, error)
            await self._audit(request, audit.failure, f"sign-in failed ({method.name}) for client {client_id}: "
                              f"{error}")
            return HTMLResponse(message_page("Sign-in failed", str(error)), status_code=401, headers=HEADERS)
        try:
            oauth = self._oauth(request, pairs, endpoint="authorize")
            grant = await asyncio.to_thread(self.server.get_consent_grant, oauth)
        except OAuth2Error as error:
            return HTMLResponse(error_page(f"{error.error}: {error.description or ''}".strip(": ")),
                                status_code=400, headers=HEADERS)
        return await self.signed_in(request, user, method.name, pairs, grant)

    def _page(self, request: Request, grant: Any, fields: dict[str, str], error: str | None, status: int) -> Response:
        client = grant.client.record
        browser, new = self.guard.browser_id(request)
        page = sign_in_page(client.name, grant.request.scope or "", fields, list(self.methods.values()), error,
                            csrf=self.guard.token(browser))
        response = HTMLResponse(page, status_code=status, headers=HEADERS)
        if new:
            self.guard.set_cookie(response, browser)
        return response

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
        return await self._audited_endpoint(request, "revocation")

    async def introspect(self, request: Request) -> Response:
        return await self._audited_endpoint(request, "introspection")

    async def _audited_endpoint(self, request: Request, name: str) -> Response:
        """RFC 7009 / RFC 7662, audited (AC-14): who asked (the authenticated client), what came of it. The
        token itself is never recorded."""
        asked: list[FormRequest] = []

        def call(oauth: FormRequest) -> Any:
            asked.append(oauth)
            return self.server.create_endpoint_response(name, oauth)

        response = await self._endpoint(request, call)
        client = getattr(asked[0], "client", None) if asked else None
        client_id = client.get_client_id() if client is not None else None
        if response.status_code != 200 or client_id is None:
            await self._audit(request, audit.failure, f"token {name} refused ({response.status_code})")
            return response
        detail = ""
        if name == "introspection":
            detail = f": active {json.loads(bytes(response.body)).get('active') is True}".lower()
        await self._audit(request, audit.success, f"token {name} by client {client_id}{detail}", who=None,
                          subject=client_id, client_id=client_id)
        return response

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
            Route("/federation/callback", self.federation_callback, methods=["GET"]),
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
