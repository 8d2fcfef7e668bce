"""The portal's Starlette app and its mounting into the FHIR app (api/app.py calls ``mount`` and ``bind``).

It is mounted before the FHIR routes (whose ``/{type}`` would otherwise answer ``/portal``). Its API client
is bound afterwards to the *outermost* application (the operator and hardening layers around the FastAPI
app), so a page's API calls pass every layer a request from outside passes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from fhir_server.config import Settings
from fhir_server.identity.issuer import IdentityConfig
from fhir_server.identity.registry import Registry
from fhir_server.portal import appointments, cabinet, care, console, esign, oversight, signin
from fhir_server.portal.api import Api
from fhir_server.portal.sessions import SessionStore
from fhir_server.portal.signin import PATIENT_ROLES, STAFF_ROLES
from fhir_server.portal.web import HEADERS, PREFIX, Portal, guarded


class _Static(StaticFiles):
    """The stylesheet, with the same security headers as the pages (and cacheable: it holds no data)."""

    async def get_response(self, path: str, scope: Any) -> Response:
        response = await super().get_response(path, scope)
        for name, value in HEADERS.items():
            if name != "Cache-Control":
                response.headers[name] = value
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response


def build(settings: Settings) -> tuple[Starlette, Portal]:
    if not settings.auth_server:
        raise ValueError("KZFHIR_PORTAL needs the built-in authorization server: KZFHIR_AUTH_SERVER=true "
                         "(the portal signs people in through it, docs/portal.md)")
    config = IdentityConfig.from_settings(settings)
    registry = Registry(config.database)
    signin.register(registry, config.audience)
    sessions = SessionStore(registry.secret("portal-session"), settings.portal_session_idle_seconds,
                            settings.portal_session_max_seconds, secure=config.audience.startswith("https://"),
                            path=registry.path)  # shared by every process on the registry's file
    portal = Portal(sessions, Api(config.audience, signin.CLIENT_ID, sessions),
                    ncalayer=esign.ncalayer_url(settings.portal_ncalayer_url))

    def route(path: str, handler: Callable[..., Any], roles: frozenset[str] | None = None,
              methods: tuple[str, ...] = ("GET",)) -> Route:
        return Route(path, guarded(portal, handler, roles), methods=list(methods))

    post = ("POST",)
    staff = STAFF_ROLES
    admins = frozenset({"admin"})
    practitioners = frozenset({"practitioner"})
    overseers = frozenset({"admin", "auditor"})
    routes = [
        route("/", signin.home),
        route("/signin", signin.start),
        route("/callback", signin.callback),
        route("/logout", signin.logout, methods=post),
        route("/lang", signin.switch_language),
        route("/records", cabinet.records, PATIENT_ROLES),
        route("/remote", care.remote_services, PATIENT_ROLES),
        route("/documents", care.documents, PATIENT_ROLES),
        route("/files/{rtype}/{rid}/{n}", care.download, PATIENT_ROLES),
        route("/messages", care.messages, PATIENT_ROLES),
        route("/consents", cabinet.consents, PATIENT_ROLES),
        route("/consents/give", cabinet.give_consent, PATIENT_ROLES, post),
        route("/consents/offer", cabinet.accept_offer, PATIENT_ROLES, post),
        route("/consents/informed", cabinet.give_informed, PATIENT_ROLES, post),
        route("/consents/sign", esign.show, PATIENT_ROLES),
        route("/consents/sign", esign.complete, PATIENT_ROLES, post),
        route("/consents/{cid}/revoke", cabinet.revoke_consent, PATIENT_ROLES, post),
        route("/access-log", cabinet.access_log, PATIENT_ROLES),
        route("/requests", cabinet.requests, PATIENT_ROLES),
        route("/requests/file", cabinet.file_request, PATIENT_ROLES, post),
        route("/notifications", cabinet.notifications, PATIENT_ROLES),
        route("/appointments", appointments.appointments, PATIENT_ROLES),
        route("/appointments/book", appointments.book, PATIENT_ROLES, post),
        route("/appointments/{aid}/move", appointments.move, PATIENT_ROLES, post),
        route("/appointments/{aid}/cancel", appointments.cancel, PATIENT_ROLES, post),
        route("/console", console.console, staff),
        route("/console/requests/{tid}/answer", console.answer, admins, post),
        route("/console/deliveries", console.deliveries, admins),
        route("/console/patient", console.patient_view, practitioners),
        route("/console/alerts/{tid}/acknowledge", console.acknowledge, practitioners, post),
        route("/console/consilium/{sid}/opinion", console.opinion, practitioners, post),
        # -- the console's oversight pages: the audit chain, the conformance kit (docs/portal.md) --
        route("/console/audit", oversight.audit, overseers),
        route("/console/audit", oversight.audit_verify, overseers, post),
        route("/console/kit", oversight.kit, admins),
        route("/console/kit", oversight.kit_start, admins, post),
        route("/console/kit/{rid}", oversight.kit_run, admins),
        Mount("/static", app=_Static(packages=[("fhir_server.portal", "static")])),
    ]
    app = Starlette(routes=routes)

    async def not_found(request: Request, exc: Exception) -> Response:
        page = portal.page(request)
        return portal.render(page, "message.html", status=404, title=page.t("portal.not_found"),
                             text=page.t("portal.not_found_text"))

    async def not_allowed(request: Request, exc: Exception) -> Response:
        page = portal.page(request)
        return portal.render(page, "message.html", status=405, title=page.t("portal.not_found"),
                             text=page.t("portal.not_found_text"))

    app.add_exception_handler(404, not_found)
    app.add_exception_handler(405, not_allowed)
    return app, portal


def mount(app: FastAPI, settings: Settings) -> Portal | None:
    """Mount the portal at /portal when ``KZFHIR_PORTAL`` asks for it; the caller binds it to the outer app."""
    if not settings.portal:
        return None
    portal_app, portal = build(settings)
    app.mount(PREFIX, portal_app)
    app.state.portal = portal  # for operators and tests: the sessions (how many, when they end)
    return portal


def bind(portal: Portal | None, outer: Any) -> None:
    if portal is not None:
        portal.api.app = outer
