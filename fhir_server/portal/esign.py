"""Giving and revoking a consent signed with the person's EDS (AC-08, AC-25), as the project records a signed
consent everywhere: the signed form travels in ``Consent.sourceAttachment`` as a CMS SignedData that
encapsulates it (``application/pkcs7-mime``, signatures/consent_evidence.py), and the server verifies it on
every write and hands the signers' IINs to the access policy.

1. A give, accept-the-offer, informed-consent or revoke form with "sign with my EDS" ticked does not write yet:
   the portal prepares the Consent version and the **form** — a plain UTF-8 text in the page's language saying
   what is given or revoked, to whom, for which records, until when, with the offer's terms for an
   acceptance, the moment and a random number — and keeps both in the session (``pending["sign"]``).
2. ``GET /portal/consents/sign`` shows the form and its base64 (what NCALayer's
   ``createCMSSignatureFromBase64`` signs); the person pastes the CMS it gives back (attached or detached).
3. ``POST /portal/consents/sign`` checks the CMS before anything is written: it is the form the page showed
   (the encapsulated content, or the detached signature's digest, is that of these bytes), the signature
   verifies, and its certificate's IIN is the patient's (or, for a representative, their own). A detached CMS
   gets the form encapsulated (the signature covers its digest, so it still verifies). The Consent version is
   then written through the API like any other, with the CMS as its ``sourceAttachment``; a revocation's version
   carries the signed revocation (the giving signature stays in the Consent's history).

The portal checks only what it can show the person (it is theirs, it is this text); whether the certificate is
trusted (chain, validity, revocation) is the server's judgement on write, as for every client.

**NCALayer from the page.** With JavaScript on, the signing page's one script (``static/ncalayer.js``, served
from the package) asks NCALayer itself: it opens NCALayer's local WebSocket (``KZFHIR_PORTAL_NCALAYER_URL``,
``wss://127.0.0.1:13579`` by default), sends ``{"module": "kz.gov.pki.knca.commonUtils", "method":
"createCMSSignatureFromBase64", "args": ["PKCS12", "SIGNATURE", <the form's base64>, true]}`` (the key store
type, the signing key and not the authentication key, the data, an attached CMS), and on ``{"code": "200",
"responseObject": <base64 CMS>}`` puts the CMS into the same field and submits the same form (its CSRF token
and the checks above unchanged). NCALayer greets a connection with ``{"result": {"version": ...}}`` and may
send ``--heartbeat--``; the script skips both. Any other answer (``{"code": "500", "message":
"action.canceled"}`` when the person closes NCALayer's window) is shown, and the paste form stays: without
JavaScript, or without NCALayer, the person signs in NCALayer and pastes the CMS. Only this page allows a
script (``script-src 'self'``) and a connection, to NCALayer's origin alone (``connect-src``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import secrets
from typing import Any
from urllib.parse import urlsplit

from asn1crypto import cms
from starlette.responses import Response

from fhir_server.portal.api import ApiError
from fhir_server.portal.web import CSP, PREFIX, Page, Portal, first
from signing import Reason, verify_cms

IIN_SYSTEM = "https://fhir.kzfhir.kz/sid/iin"
CMS_TYPE = "application/pkcs7-mime"
#: a prepared signature must be completed within this many seconds
SIGN_SECONDS = 900
MAX_CMS_BYTES = 48 * 1024
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def ncalayer_url(value: str) -> str:
    """NCALayer's WebSocket address as the setting gives it, checked at start: ``ws://`` or ``wss://`` on a
    loopback address with a port (NCALayer runs on the person's own computer), nothing else; "" is none."""
    value = value.strip()
    if not value:
        return ""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        port = None
        parts = urlsplit("")
    if parts.scheme not in ("ws", "wss") or parts.hostname not in LOOPBACK or port is None or parts.query or \
            parts.fragment or parts.username or parts.password or parts.path not in ("", "/"):
        raise ValueError(f"KZFHIR_PORTAL_NCALAYER_URL must be ws:// or wss:// on a loopback address with a port, "
                         f"as NCALayer's wss://127.0.0.1:13579 (or empty for none), not {value!r}")
    return value.rstrip("/")


def sign_page_csp(ncalayer: str) -> str:
    """The signing page's policy: the portal's, plus its own script and a connection to NCALayer's origin only."""
    if not ncalayer:
        return CSP
    parts = urlsplit(ncalayer)
    host = f"[{parts.hostname}]" if parts.hostname == "::1" else parts.hostname
    return f"{CSP}; script-src 'self'; connect-src {parts.scheme}://{host}:{parts.port}"


def form_text(page: Page, heading: str, lines: list[tuple[str, str]]) -> str:
    """The form the person signs: a heading, ``label: value`` lines, the moment and a random number."""
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    body = [heading, ""] + [f"{label}: {value}" for label, value in lines if value]
    body += [f"{page.t('portal.sign_moment')}: {now}", f"{page.t('portal.sign_nonce')}: {secrets.token_hex(8)}"]
    return "\n".join(body) + "\n"


def prepare(portal: Portal, page: Page, action: str, form: str, *, consent: dict[str, Any] | None = None,
            cid: str = "") -> Response:
    """Keep what is to be signed in the session and show the signing page (POST, redirect, GET)."""
    session = page.me
    session.pending = {**session.pending, "sign": {"action": action, "form": form, "consent": consent, "cid": cid,
                                                   "until": dt.datetime.now(dt.UTC).timestamp() + SIGN_SECONDS}}
    portal.sessions.save(session)
    return portal.redirect(f"{PREFIX}/consents/sign")


def _pending(page: Page) -> dict[str, Any] | None:
    found = page.me.pending.get("sign")
    if not isinstance(found, dict) or float(found.get("until", 0)) < dt.datetime.now(dt.UTC).timestamp():
        return None
    return found


async def show(portal: Portal, page: Page, *, error: str = "", status: int = 200) -> Response:
    pending = _pending(page)
    if pending is None:
        return portal.redirect(f"{PREFIX}/consents")
    form = str(pending["form"])
    response = portal.render(page, "sign.html", status=status, form=form, action=pending["action"], error=error,
                             form_base64=base64.b64encode(form.encode("utf-8")).decode("ascii"),
                             ncalayer=portal.ncalayer)
    response.headers["Content-Security-Policy"] = sign_page_csp(portal.ncalayer)
    return response


def attached(der: bytes, content: bytes) -> bytes:
    """The CMS with ``content`` encapsulated (a detached signature over it stays valid: it signs its digest)."""
    info = cms.ContentInfo.load(der)
    signed = info["content"]
    if signed["encap_content_info"]["content"].native is not None:
        return der
    signed["encap_content_info"] = {"content_type": "data", "content": content}
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump(force=True))


async def _own_iins(portal: Portal, page: Page) -> set[str]:
    """The IINs that may sign for this cabinet: the patient's, and a representative's own."""
    refs = [f"Patient/{page.me.patient}"]
    if page.me.fhir_user.startswith("RelatedPerson/"):
        refs.append(page.me.fhir_user)
    found: set[str] = set()
    for ref in refs:
        try:
            resource = await portal.call(page, "GET", f"/{ref}")
        except ApiError:
            continue
        found |= {str(i.get("value")) for i in (resource or {}).get("identifier") or []
                  if i.get("system") == IIN_SYSTEM and i.get("value")}
    return found


async def complete(portal: Portal, page: Page) -> Response:
    fields = await portal.form(page)
    pending = _pending(page)
    if pending is None:
        return portal.redirect(f"{PREFIX}/consents")
    form = str(pending["form"]).encode("utf-8")
    text = "".join(first(fields, "cms").split())
    try:
        der = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        der = b""
    if not der or len(der) > MAX_CMS_BYTES:
        return await show(portal, page, error=page.t("portal.sign_bad_cms"), status=400)
    checked = await verify_cms(der, form, None)
    if not (checked.intact and checked.valid):
        return await show(portal, page, error=page.t("portal.sign_not_this_form"), status=422)
    if Reason.WRONG_KEY_USAGE in checked.reasons:  # the authentication key signs in, the signing key signs
        return await show(portal, page, error=page.t("portal.sign_wrong_key"), status=422)
    if checked.iin is None or checked.iin not in await _own_iins(portal, page):
        return await show(portal, page, error=page.t("portal.sign_not_yours"), status=422)
    try:
        evidence = attached(der, form)
    except (ValueError, KeyError, TypeError):
        return await show(portal, page, error=page.t("portal.sign_bad_cms"), status=400)
    source = {"contentType": CMS_TYPE, "language": page.lang, "data": base64.b64encode(evidence).decode("ascii"),
              "title": str(pending["form"]).split("\n", 1)[0],
              "creation": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    try:
        if pending["action"] == "revoke":
            consent = await portal.call(page, "GET", f"/Consent/{pending['cid']}")
            consent.update({"status": "inactive", "sourceAttachment": source})
            await portal.call(page, "PUT", f"/Consent/{pending['cid']}", body=consent)
        else:
            await portal.call(page, "POST", "/Consent", body={**pending["consent"], "sourceAttachment": source})
    except ApiError as refused:
        return await show(portal, page, error=refused.text or page.t("portal.api_error_text", status=refused.status),
                          status=refused.status)
    session = page.me
    session.pending = {k: v for k, v in session.pending.items() if k != "sign"}
    portal.sessions.save(session)
    done = "revoked" if pending["action"] == "revoke" else "given"
    return portal.redirect(f"{PREFIX}/consents?{done}=1&signed=1")
