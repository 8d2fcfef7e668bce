"""What every portal page shares: the session, the language, the CSRF check, the security headers, rendering.

Headers on every answer (OWASP Secure Headers): a strict Content-Security-Policy (``default-src 'none'``;
styles and images only from the portal itself; no script at all, inline or not; forms only to this origin;
never framed), ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``, ``Cache-Control:
no-store`` (the pages hold health data), ``X-Frame-Options: DENY`` for older browsers. The consent signing page
alone widens the policy, to its own script and a connection to NCALayer's origin (esign.py ``sign_page_csp``)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from fhir_server.i18n import LANGUAGES, Language
from fhir_server.portal.api import Api, ApiError, SignedOut
from fhir_server.portal.charts import number
from fhir_server.portal.sessions import Session, SessionStore
from fhir_server.portal.texts import NAMES, Texts, language

CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-store", "X-Frame-Options": "DENY"}
MAX_FORM_BYTES = 64 * 1024
PREFIX = "/portal"


class NotFound(Exception):
    """A page for something that cannot exist (a malformed id)."""


class Forbidden(Exception):
    """A POST without the session's CSRF token, or a page the signed-in role has no part in."""


@dataclass
class Page:
    """One request to a portal page: who, in which language, from where."""

    request: Request
    session: Session | None
    lang: Language
    t: Texts
    client_ip: str

    @property
    def me(self) -> Session:
        if self.session is None or not self.session.signed_in:
            raise SignedOut()
        return self.session


class Portal:
    def __init__(self, sessions: SessionStore, api: Api, *, ncalayer: str = "") -> None:
        self.sessions, self.api = sessions, api
        self.ncalayer = ncalayer  # NCALayer's WebSocket for the signing page's script (esign.py); "" none
        self.env = Environment(loader=PackageLoader("fhir_server.portal", "templates"),
                               autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
        self.env.filters["num"] = number

    # -- the request -------------------------------------------------------------------------------------
    def page(self, request: Request) -> Page:
        session = self.sessions.get(request.cookies.get(self.sessions.cookie_name))
        lang = language(request)
        return Page(request, session, lang, Texts(lang), request.client.host if request.client else "127.0.0.1")

    async def form(self, page: Page) -> dict[str, list[str]]:
        """The posted form (application/x-www-form-urlencoded), after the CSRF check (403 without it)."""
        body = await page.request.body()
        if len(body) > MAX_FORM_BYTES:
            raise Forbidden()
        fields: dict[str, list[str]] = {}
        for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            fields.setdefault(name, []).append(value)
        if not self.sessions.csrf_ok(page.session, (fields.get("csrf_token") or [""])[0]):
            raise Forbidden()
        return fields

    async def call(self, page: Page, method: str, path: str, **kwargs: Any) -> Any:
        return await self.api.call(page.me, method, path, client_ip=page.client_ip, lang=page.lang, **kwargs)

    # -- the answer --------------------------------------------------------------------------------------
    def render(self, page: Page, template: str, status: int = 200, **data: Any) -> HTMLResponse:
        path = page.request.url.path
        query = page.request.url.query
        here = path + (f"?{query}" if query else "")
        html = self.env.get_template(template).render(
            t=page.t, lang=page.lang, languages=[(code, NAMES[code]) for code in LANGUAGES], here=here,
            path=path, session=page.session if page.session and page.session.signed_in else None,
            csrf=page.session.csrf if page.session else "", prefix=PREFIX, **data)
        return HTMLResponse(html, status_code=status, headers=HEADERS)

    def redirect(self, target: str) -> RedirectResponse:
        return RedirectResponse(target, status_code=303, headers=HEADERS)

    def set_cookie(self, response: Response, session: Session) -> None:
        # SameSite=Strict: a link from another site arrives without the session (OWASP CSRF, defence in depth)
        response.set_cookie(self.sessions.cookie_name, self.sessions.cookie_value(session), httponly=True,
                            secure=self.sessions.secure, samesite="strict", path="/")

    def clear_cookie(self, response: Response) -> None:
        response.delete_cookie(self.sessions.cookie_name, path="/", secure=self.sessions.secure, httponly=True,
                               samesite="strict")


Handler = Callable[[Portal, Page], Awaitable[Response]]


def guarded(portal: Portal, handler: Handler, roles: frozenset[str] | None = None
            ) -> Callable[[Request], Awaitable[Response]]:
    """A route: the page's session and language, the roles the page is for, and the answers to a session
    that ended (back to the start, saying so), a missing CSRF token (403) and an API refusal (its status)."""

    async def endpoint(request: Request) -> Response:
        page = portal.page(request)
        try:
            if roles is not None:
                if page.session is None or not page.session.signed_in:
                    raise SignedOut()
                if page.session.role not in roles:
                    raise Forbidden()
            return await handler(portal, page)
        except SignedOut:
            if page.session is not None:
                portal.sessions.end(page.session)
            if portal.sessions.cookie_name not in request.cookies:
                # never signed in here, or a link from another site (SameSite=Strict sends no cookie): the start
                # page, and no Set-Cookie that would sign out the session this browser does have
                return portal.redirect(f"{PREFIX}/")
            response = portal.redirect(f"{PREFIX}/?ended=1")
            portal.clear_cookie(response)
            return response
        except NotFound:
            return portal.render(page, "message.html", status=404, title=page.t("portal.not_found"),
                                 text=page.t("portal.not_found_text"))
        except Forbidden:
            return portal.render(page, "message.html", status=403, title=page.t("portal.forbidden_title"),
                                 text=page.t("portal.forbidden_text"))
        except ApiError as error:
            status = error.status if error.status in (400, 403, 404, 409, 410, 412, 422) else 502
            return portal.render(page, "message.html", status=status, title=page.t("portal.api_error_title"),
                                 text=error.text or page.t("portal.api_error_text", status=error.status))

    return endpoint


def first(fields: dict[str, list[str]], name: str) -> str:
    return (fields.get(name) or [""])[0].strip()


_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def fhir_id(value: str) -> str:
    r"""A resource id from a page's path (R4 §2.1.0.1 id: [A-Za-z0-9\-.]{1,64}), never ``.``/``..``: an id that
    is not one is no page (the API call would otherwise be made to another path)."""
    if not _ID.fullmatch(value) or not value.strip("."):
        raise NotFound()
    return value


def local_path(target: str) -> str:
    """A redirect target after the language switch or sign-in: a path of the portal, never another site."""
    if target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target and \
            "//" not in target:
        return target
    return PREFIX + "/"
