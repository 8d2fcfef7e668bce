"""The portal without a browser (httpx against the app, no JavaScript): sign-in, the pages, and the guarantees
of a web app — CSRF refusal, the CSP, session expiry, logout — and that a page is only a client of the API:
what the API refuses the page cannot show, and a page's data access is audited like any API call."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from fhir_server.portal.api import ApiError
from fhir_server.portal.web import CSP
from tests.portal.conftest import LOCAL, csrf, sign_in

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def portal_of(client: httpx.AsyncClient) -> Any:
    return client.app.state.portal  # type: ignore[attr-defined]


def session_of(client: httpx.AsyncClient) -> Any:
    """The stored session this browser's cookie names (sessions.py keeps them in the registry's file)."""
    sessions = portal_of(client).sessions
    session = sessions.get(client.cookies.get(sessions.cookie_name))
    assert session is not None
    return session


async def second_browser(web: httpx.AsyncClient) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=web.app), base_url=LOCAL,  # type: ignore[attr-defined]
                             timeout=60)


@pytest.mark.req("TM-12")
@pytest.mark.req("TM-04")
async def test_a_patient_signs_in_with_the_eds_certificate_and_sees_the_records(web, pki):
    answer = await sign_in(web, eds=pki)
    assert answer.status_code == 303 and answer.headers["location"] == "/portal/records"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    page = await web.get("/portal/records")
    assert page.status_code == 200
    text = page.text
    assert "Cardiology visit" in text and "Essential hypertension" in text and "Amlodipine 5 mg" in text
    assert '<svg' in text and "limits 50 to 120" in text
    assert text.count('class="bad"') == 1  # 131/min is outside the Goal's 50-120, the others inside
    assert "64" not in re.sub(r"<svg.*?</svg>", "", text, flags=re.S).split("Measurements")[1].split("Visits")[0]


@pytest.mark.req("TM-12")
async def test_every_page_answers_with_the_strict_headers(web, pki):
    for path in ("/portal/", "/portal/static/portal.css", "/portal/nowhere"):
        response = await web.get(path)
        assert response.headers["content-security-policy"] == CSP, path
        assert response.headers["x-content-type-options"] == "nosniff"
    await sign_in(web)
    for path in ("/portal/records", "/portal/consents", "/portal/access-log", "/portal/requests",
                 "/portal/notifications"):
        response = await web.get(path)
        assert response.status_code == 200, (path, response.text)
        assert response.headers["content-security-policy"] == CSP and "script-src" not in CSP
        assert response.headers["cache-control"] == "no-store" and response.headers["x-frame-options"] == "DENY"
        assert "<script" not in response.text and " style=" not in response.text  # nothing the CSP would block


async def test_a_post_without_the_sessions_csrf_token_is_refused(web):
    await sign_in(web)
    page = await web.get("/portal/consents")
    token = csrf(page)
    form = {"grantee_kind": "practitioner", "grantee": "dr1"}
    for extra in ({}, {"csrf_token": "forged"}, {"csrf_token": token[:-1]}):
        refused = await web.post("/portal/consents/give", data={**form, **extra})
        assert refused.status_code == 403
    assert "<td>Practitioner/dr1</td>" not in (await web.get("/portal/consents")).text  # nothing was given
    other = await second_browser(web)
    async with other:
        await sign_in(other, "bolat")
        stolen = await other.post("/portal/consents/give", data={**form, "csrf_token": token})
        assert stolen.status_code == 403  # one session's token is no good in another
    assert (await web.post("/portal/logout", data={})).status_code == 403
    given = await web.post("/portal/consents/give", data={**form, "csrf_token": token})
    assert given.status_code == 303


async def test_a_session_ends_when_idle_and_at_its_maximum(web, monkeypatch):
    await sign_in(web)
    assert (await web.get("/portal/records")).status_code == 200
    sessions = portal_of(web).sessions
    import fhir_server.portal.sessions as module

    real = module.time.time
    monkeypatch.setattr(module.time, "time", lambda: real() + sessions.idle_seconds + 5)
    ended = await web.get("/portal/records")
    assert ended.status_code == 303 and ended.headers["location"] == "/portal/?ended=1"
    assert "Your session has ended" in (await web.get("/portal/?ended=1")).text
    monkeypatch.setattr(module.time, "time", real)
    assert (await web.get("/portal/records")).status_code == 303  # the ended session is gone for good
    await sign_in(web)
    session = session_of(web)
    session.created -= sessions.max_seconds + 1  # busy all along, but signed in too long ago
    sessions.save(session)
    assert (await web.get("/portal/records")).status_code == 303


async def test_logout_revokes_the_tokens_and_ends_the_session(web):
    await sign_in(web)
    page = await web.get("/portal/records")
    session = session_of(web)
    token = session.access_token
    assert (await web.get("/Patient/p1", headers={"Authorization": f"Bearer {token}"})).status_code == 200
    out = await web.post("/portal/logout", data={"csrf_token": csrf(page)})
    assert out.status_code == 303 and out.headers["location"] == "/portal/?signed_out=1"
    assert 'kzfhir_portal=""' in out.headers["set-cookie"] and "Max-Age=0" in out.headers["set-cookie"]
    assert len(portal_of(web).sessions) == 0
    assert (await web.get("/Patient/p1", headers={"Authorization": f"Bearer {token}"})).status_code == 401
    assert (await web.get("/portal/records")).status_code == 303


async def test_a_forged_cookie_or_a_foreign_callback_is_no_session(web):
    web.cookies.set("kzfhir_portal", "abc.def", domain="localhost")
    assert (await web.get("/portal/records")).status_code == 303
    start = await web.get("/portal/signin")
    assert start.status_code == 303
    assert (await web.get("/portal/callback", params={"code": "x", "state": "not-mine"})).status_code == 403


@pytest.mark.req("TM-12")
async def test_a_patient_cannot_see_another_patients_data_the_api_refuses(web):
    await sign_in(web, "bolat")
    page = (await web.get("/portal/records")).text
    assert "Cardiology visit" not in page and "Essential hypertension" not in page and "131" not in page
    assert (await web.get("/portal/console/patient", params={"id": "p1"})).status_code == 403  # staff only
    portal = portal_of(web)
    session = session_of(web)
    assert session.patient == "p2"
    with pytest.raises(ApiError) as refused:  # even if a page asked for p1, the API answers as for anyone
        await portal.api.call(session, "GET", "/Patient/p1/$access-log", client_ip="127.0.0.1", lang="en")
    assert refused.value.status in (403, 404)
    found = await portal.api.call(session, "GET", "/Observation", client_ip="127.0.0.1", lang="en",
                                  params={"patient": "Patient/p1"})
    assert not found.get("entry")


@pytest.mark.req("AC-14")
@pytest.mark.req("AC-24")
async def test_a_pages_reads_are_audited_like_api_calls(web, auth):
    await sign_in(web)
    assert (await web.get("/portal/records")).status_code == 200
    events = await web.get("/AuditEvent", params={"_count": "500"}, headers=auth("auditor", "Practitioner/aud1"))
    reads = [e["resource"] for e in events.json().get("entry", [])
             if any((a.get("who") or {}).get("reference") == "Patient/p1" for a in e["resource"].get("agent", []))
             and any((s.get("code") == "search-type") for s in e["resource"].get("subtype", []))]
    assert len(reads) >= 5  # one per record type the page asked for, each judged and chained
    log = (await web.get("/portal/access-log")).text
    assert "search-type" in log and "Patient/p1 (patient)" in log


@pytest.mark.req("TM-12")
async def test_the_language_switch_and_no_open_redirect(web):
    switched = await web.get("/portal/lang", params={"to": "kk", "next": "/portal/"})
    assert switched.status_code == 303 and switched.headers["location"] == "/portal/"
    page = await web.get("/portal/")
    assert '<html lang="kk">' in page.text and "Кіру" in page.text
    await web.get("/portal/lang", params={"to": "ru", "next": "/portal/"})
    assert '<html lang="ru">' in (await web.get("/portal/")).text
    for target in ("https://evil.example/", "//evil.example/", "/portal//evil.example", "/elsewhere"):
        away = await web.get("/portal/lang", params={"to": "en", "next": target})
        assert away.headers["location"] == "/portal/", target
    web.cookies.delete("kzfhir_lang")
    assert '<html lang="kk">' in (await web.get("/portal/", headers={"Accept-Language": "kk-KZ"})).text


@pytest.mark.req("TM-12")
async def test_staff_pages_are_for_staff_and_patient_pages_for_patients(web):
    await sign_in(web, "dr.serik")
    assert (await web.get("/portal/records")).status_code == 403
    assert (await web.get("/portal/console")).status_code == 200
    assert (await web.post("/portal/console/requests/x/answer", data={})).status_code == 403  # admins only


async def test_an_expiring_token_is_refreshed_once_for_a_page_of_parallel_calls(web):
    """The records page asks six searches at once; the token is about to lapse: one refresh, not six (a
    refresh token spent twice would revoke the whole sign-in, RFC 9700 §4.14.2)."""
    await sign_in(web)
    session = session_of(web)
    first_access, first_refresh = session.access_token, session.refresh_token
    session.expires_at = 1.0  # long past
    portal_of(web).sessions.save(session)
    page = await web.get("/portal/records")
    assert page.status_code == 200 and "Cardiology visit" in page.text
    session = session_of(web)
    assert session.access_token != first_access and session.refresh_token not in ("", first_refresh)
    assert (await web.get("/portal/consents")).status_code == 200  # the rotated chain is still alive
    revoked = await web.post("/auth/revoke", data={"client_id": "kzfhir-portal", "token": session.refresh_token})
    assert revoked.status_code == 200
    await web.post("/auth/revoke", data={"client_id": "kzfhir-portal", "token": session.access_token})
    ended = await web.get("/portal/records")  # the refresh fails now: the session is over, not a 500
    assert ended.status_code == 303 and ended.headers["location"] == "/portal/?ended=1"


async def test_a_malformed_id_in_a_path_is_no_page(web):
    await sign_in(web)
    token = csrf(await web.get("/portal/consents"))
    for cid in ("..", ".", "a" * 65, "x%20y"):
        answer = await web.post(f"/portal/consents/{cid}/revoke", data={"csrf_token": token})
        assert answer.status_code == 404, cid


@pytest.mark.req("AC-09")
@pytest.mark.req("TM-12")
async def test_a_representative_sees_the_cabinet_of_the_person_represented(web):
    answer = await sign_in(web, "mother")
    assert answer.headers["location"] == "/portal/records"
    session = session_of(web)
    assert session.role == "related-person" and session.patient == "p2"
    page = await web.get("/portal/records")
    assert page.status_code == 200 and "64 /min" in page.text and "131" not in page.text
    assert (await web.get("/portal/access-log")).status_code == 200  # verified authority: as the patient


async def test_a_link_without_the_cookie_does_not_sign_the_browser_out(web):
    """A link from another site arrives without the SameSite=Strict cookie: the start page, and no
    Set-Cookie that would end the session the browser has."""
    assert (await sign_in(web)).status_code == 303
    saved = list(web.cookies.jar)
    web.cookies.clear()
    away = await web.get("/portal/records")
    assert away.status_code == 303 and away.headers["location"] == "/portal/" and "set-cookie" not in away.headers
    for cookie in saved:
        web.cookies.jar.set_cookie(cookie)
    assert (await web.get("/portal/records")).status_code == 200


async def test_pending_sign_ins_are_bounded(web, monkeypatch):
    import fhir_server.portal.sessions as module

    monkeypatch.setattr(module, "MAX_PENDING", 5)
    await sign_in(web)
    sessions = portal_of(web).sessions
    for _ in range(20):
        sessions.new()
    assert sessions.pending_count() == 5
    assert (await web.get("/portal/records")).status_code == 200  # a signed-in session is never dropped


@pytest.mark.req("TM-12")
async def test_two_server_processes_serve_one_signed_in_browser(web, settings):
    """Sessions live in the identity registry's file, not a process's memory: a second server on the same files
    (another app instance here; a second ``kzfhir serve`` in test_browser.py) serves the browser that signed in
    at the first, refreshes its token, and a logout or the idle limit at one ends it at both."""
    from fhir_server.api.app import create_app

    other = create_app(settings)
    async with other.router.lifespan_context(other), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=other), base_url=LOCAL, timeout=60) as there:
        await sign_in(web)
        there.cookies = web.cookies  # one browser, two servers behind a balancer
        page = await there.get("/portal/records")
        assert page.status_code == 200 and "Cardiology visit" in page.text
        assert other.state.portal is not portal_of(web) and len(other.state.portal.sessions) == 1

        stored = session_of(web)  # the token lapses: the second server refreshes it, the first uses the new one
        stored.expires_at = 1.0
        portal_of(web).sessions.save(stored)
        assert (await there.get("/portal/consents")).status_code == 200
        renewed = session_of(web)
        assert renewed.access_token != stored.access_token and renewed.refresh_token != stored.refresh_token
        page = await web.get("/portal/records")
        assert page.status_code == 200 and "Cardiology visit" in page.text

        out = await there.post("/portal/logout", data={"csrf_token": csrf(page)})  # the first server's form
        assert out.status_code == 303 and out.headers["location"] == "/portal/?signed_out=1"
        web.cookies = there.cookies
        assert (await web.get("/portal/records")).status_code == 303
        assert len(portal_of(web).sessions) == 0

        await sign_in(web)
        there.cookies = web.cookies
        assert (await there.get("/portal/records")).status_code == 200
        sessions = portal_of(web).sessions
        session = session_of(web)
        assert sessions.get(sessions.cookie_value(session), now=session.seen + sessions.idle_seconds + 5) is None
        assert (await there.get("/portal/records")).status_code == 303  # idle too long: ended at both


async def test_a_stored_session_is_sealed_a_copy_of_the_file_acts_for_nobody(web, settings):
    import sqlite3

    await sign_in(web)
    session = session_of(web)
    sessions = portal_of(web).sessions
    with sqlite3.connect(sessions.path) as db:
        rows = db.execute("SELECT row, state FROM portal_sessions").fetchall()
    assert len(rows) == 1
    row, state = rows[0]
    assert session.sid not in row and session.access_token.encode() not in state
    assert session.refresh_token.encode() not in state and session.csrf.encode() not in state
    with sqlite3.connect(sessions.path) as db:  # an altered state is no session (AES-GCM)
        db.execute("UPDATE portal_sessions SET state = ?", (bytes([state[0] ^ 1]) + state[1:],))
    assert (await web.get("/portal/records")).status_code == 303
