"""Signing in to the portal: the SMART authorization-code flow with PKCE against the built-in authorization
server (docs/identity.md), the portal being one of its registered public clients (``kzfhir-portal``).

The person signs in on the authorization server's own page, with any method it offers (password, EDS
certificate, the eGov federation) and answers its consent screen; the portal never sees a credential. The
code comes back to ``/portal/callback`` and is exchanged in-process at ``/auth/token``; the token is
introspected (RFC 7662, a client may introspect its own tokens) for the person's role and fhirUser. The
pre-session that started the flow must be the one that returns (``state``, single use), and the signed-in
session gets a new id (session fixation)."""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlencode

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from starlette.responses import Response

from fhir_server.identity.registration import new_client
from fhir_server.identity.registry import Registry
from fhir_server.portal.api import ApiError, SignedOut
from fhir_server.portal.sessions import Session
from fhir_server.portal.web import PREFIX, Forbidden, Page, Portal, local_path

CLIENT_ID = "kzfhir-portal"
#: what the portal asks for; the authorization server grants the part the person's role has a use for, and the
#: access policy decides the rest (patients: their compartment; staff: what Consents grant)
SCOPES = ("openid", "fhirUser", "launch/patient", "offline_access", "patient/*.cruds", "user/*.cruds")
PATIENT_ROLES = frozenset({"patient", "related-person"})
STAFF_ROLES = frozenset({"practitioner", "admin", "auditor"})


def register(registry: Registry, base: str) -> None:
    """The portal as a client of the authorization server: public (PKCE), its callback on this server."""
    client = new_client(CLIENT_ID, "kzfhir portal", redirect_uris=[f"{base}{PREFIX}/callback"], scopes=SCOPES)
    existing = registry.client(CLIENT_ID)
    if existing is None:
        registry.add_client(client)
    elif not existing.disabled and (existing.redirect_uris, existing.scopes) != (client.redirect_uris, client.scopes):
        registry.add_client(client, replace=True)  # the public URL changed; a disabled portal stays disabled


async def start(portal: Portal, page: Page) -> Response:
    """GET /portal/signin: a pre-session holding the PKCE verifier and state, then off to /auth/authorize."""
    session = page.session if page.session is not None and not page.session.signed_in else portal.sessions.new()
    verifier, state = secrets.token_urlsafe(48), secrets.token_urlsafe(24)
    session.pending = {"state": state, "verifier": verifier,
                       "next": local_path(page.request.query_params.get("next", f"{PREFIX}/"))}
    portal.sessions.save(session)
    query = urlencode({"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": _callback(portal),
                       "scope": " ".join(SCOPES), "state": state, "aud": portal.api.base,
                       "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256"})
    response = portal.redirect(f"/auth/authorize?{query}")
    portal.set_cookie(response, session)
    return response


def _callback(portal: Portal) -> str:
    return f"{portal.api.base}{PREFIX}/callback"


async def callback(portal: Portal, page: Page) -> Response:
    params = page.request.query_params
    session = page.session
    state = params.get("state", "")
    if session is None or not session.pending or not secrets.compare_digest(session.pending.get("state", ""),
                                                                            state):
        raise Forbidden()
    pending, session.pending = session.pending, {}
    portal.sessions.save(session)  # the state is used once, whatever follows
    if params.get("error") or not params.get("code"):
        return portal.render(page, "message.html", status=401, title=page.t("portal.signin_failed"),
                             text=page.t("portal.signin_denied"))
    answer = await portal.api.form("/auth/token", {
        "grant_type": "authorization_code", "code": params["code"], "redirect_uri": _callback(portal),
        "client_id": CLIENT_ID, "code_verifier": pending["verifier"]}, page.client_ip)
    if answer.status_code != 200:
        return portal.render(page, "message.html", status=401, title=page.t("portal.signin_failed"),
                             text=page.t("portal.signin_denied"))
    tokens = answer.json()
    claims = (await portal.api.form("/auth/introspect", {"client_id": CLIENT_ID, "token": tokens["access_token"]},
                                    page.client_ip)).json()
    fresh = portal.sessions.rotate(session)
    fresh.access_token, fresh.refresh_token = tokens["access_token"], tokens.get("refresh_token", "")
    fresh.expires_at = time.time() + int(tokens.get("expires_in", 0))
    fresh.username, fresh.role = str(claims.get("sub", "")), str(claims.get("role", ""))
    fhir_user = str(claims.get("fhirUser", ""))
    fresh.fhir_user = "/".join(fhir_user.rstrip("/").split("/")[-2:]) if fhir_user else ""
    fresh.patient = str(tokens.get("patient") or claims.get("patient") or "")
    if not fresh.patient and fresh.fhir_user.startswith("Patient/"):
        fresh.patient = fresh.fhir_user.split("/", 1)[1]
    portal.sessions.save(fresh)  # before any API call: a token refresh starts from the stored session
    if not fresh.patient and fresh.role == "related-person" and fresh.fhir_user.startswith("RelatedPerson/"):
        fresh.patient = await _represented(portal, page, fresh)
        portal.sessions.save(fresh)
    target = pending.get("next") or f"{PREFIX}/"
    if target == f"{PREFIX}/":
        target = f"{PREFIX}/records" if fresh.role in PATIENT_ROLES else f"{PREFIX}/console"
    response = portal.redirect(target)
    portal.set_cookie(response, fresh)
    return response


async def _represented(portal: Portal, page: Page, session: Session) -> str:
    """The patient a representative acts for: their own RelatedPerson's ``patient``, read through the API with
    their token (AC-09: what they may then see is the policy's decision, verified authority or a Consent)."""
    try:
        person = await portal.api.call(session, "GET", f"/{session.fhir_user}", client_ip=page.client_ip,
                                       lang=page.lang)
    except (ApiError, SignedOut):
        return ""
    reference = str(((person or {}).get("patient") or {}).get("reference", ""))
    return reference.split("/", 1)[1] if reference.startswith("Patient/") else ""


async def logout(portal: Portal, page: Page) -> Response:
    """POST /portal/logout (CSRF-checked): the tokens revoked at the authorization server, the session gone."""
    await portal.form(page)
    session = page.me
    await portal.api.revoke(session, page.client_ip)
    portal.sessions.end(session)
    response = portal.redirect(f"{PREFIX}/?signed_out=1")
    portal.clear_cookie(response)
    return response


async def switch_language(portal: Portal, page: Page) -> Response:
    """GET /portal/lang?to=kk&next=…: remember the choice in a cookie and show the same page again."""
    to = page.request.query_params.get("to", "")
    response = portal.redirect(local_path(page.request.query_params.get("next", f"{PREFIX}/")))
    if to in ("kk", "ru", "en"):
        response.set_cookie("kzfhir_lang", to, max_age=365 * 86400, httponly=True, samesite="lax", path="/",
                            secure=portal.sessions.secure)
    return response


async def home(portal: Portal, page: Page) -> Response:
    session = page.session
    if session is not None and session.signed_in:
        return portal.redirect(f"{PREFIX}/records" if session.role in PATIENT_ROLES else f"{PREFIX}/console")
    query = page.request.query_params
    notice = page.t("portal.session_ended") if query.get("ended") else (
        page.t("portal.signed_out") if query.get("signed_out") else "")
    return portal.render(page, "home.html", notice=notice)

