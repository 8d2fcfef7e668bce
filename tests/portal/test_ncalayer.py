"""Signing a consent with NCALayer from the page (AC-08, AC-25): the signing page's one script, served from the
package, and the narrow policy that lets it run and reach NCALayer's local WebSocket only; the address a setting
(``KZFHIR_PORTAL_NCALAYER_URL``), checked at start. The protocol itself is spoken here as the script speaks it,
against the fake NCALayer the browser test uses (tests/portal/ncalayer.py); the Chromium test runs the script."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from fhir_server.api.app import create_app
from fhir_server.portal.esign import ncalayer_url, sign_page_csp
from fhir_server.portal.web import CSP
from signing import verify_cms
from tests.portal.conftest import PATIENT_IIN, csrf, portal_settings, sign_in
from tests.portal.ncalayer import FakeNcaLayer
from tests.portal.test_consent_signing import consents_of, form_of

NCALAYER = "wss://127.0.0.1:13579"


@pytest.fixture
def fake_ncalayer(pki: Path) -> Iterator[FakeNcaLayer]:
    fake = FakeNcaLayer(pki)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


async def ask_for_signature(web: httpx.AsyncClient, page: httpx.Response) -> httpx.Response:
    """The sign page after a consent was asked for on ``page`` with "sign with my EDS"."""
    asked = await web.post("/portal/consents/give", data={
        "csrf_token": csrf(page), "grantee_kind": "practitioner", "grantee": "dr1", "classes": "Observation",
        "eds": "yes"})
    assert asked.status_code == 303 and asked.headers["location"] == "/portal/consents/sign"
    return await web.get("/portal/consents/sign")


@pytest.mark.req("AC-08")
@pytest.mark.req("AC-25")
async def test_only_the_signing_page_allows_its_script_and_a_connection_to_ncalayer(web):
    await sign_in(web)
    consents = await web.get("/portal/consents")
    assert consents.headers["content-security-policy"] == CSP and "<script" not in consents.text
    sign_page = await ask_for_signature(web, consents)
    policy = sign_page.headers["content-security-policy"]
    assert policy == f"{CSP}; script-src 'self'; connect-src {NCALAYER}"
    assert "'unsafe-inline'" not in policy and "default-src 'none'" in policy
    assert '<script src="/portal/static/ncalayer.js" defer></script>' in sign_page.text
    assert re.search(r"<script>|<script [^s]| on[a-z]+=", sign_page.text) is None  # no inline script or handler
    assert f'data-url="{NCALAYER}"' in sign_page.text and 'id="ncalayer" hidden' in sign_page.text
    assert 'name="csrf_token"' in sign_page.text and 'id="cms" name="cms"' in sign_page.text  # the paste fallback
    script = await web.get("/portal/static/ncalayer.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert script.headers["x-content-type-options"] == "nosniff"
    assert "kz.gov.pki.knca.commonUtils" in script.text and "createCMSSignatureFromBase64" in script.text
    assert "http" not in re.sub(r"/\*.*?\*/", "", script.text, flags=re.S)  # it names no other address
    web.cookies.set("kzfhir_lang", "ru")
    russian = await web.get("/portal/consents/sign")
    assert "Подписать через NCALayer" in russian.text and "NCALayer не ответил" in russian.text


@pytest.mark.req("AC-08")
async def test_without_an_ncalayer_address_the_page_has_no_script_and_the_portals_policy(tmp_path, pki):
    from fhir_server.identity.issuer import IdentityConfig
    from fhir_server.identity.registry import Registry
    from tests.portal.conftest import LOCAL, register_people, seed_resources, store

    settings = portal_settings(tmp_path, pki, portal_ncalayer_url="")
    register_people(Registry(IdentityConfig.from_settings(settings).database))
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=LOCAL, timeout=60) as web:
        await store(app, seed_resources())
        await sign_in(web)
        sign_page = await ask_for_signature(web, await web.get("/portal/consents"))
        assert sign_page.status_code == 200
        assert sign_page.headers["content-security-policy"] == CSP and "<script" not in sign_page.text


def test_the_ncalayer_address_is_a_websocket_on_this_computer(tmp_path, pki):
    assert ncalayer_url("wss://127.0.0.1:13579") == "wss://127.0.0.1:13579"
    assert ncalayer_url("ws://localhost:4567/") == "ws://localhost:4567"
    assert ncalayer_url(" ") == ""
    assert sign_page_csp("ws://[::1]:4567").endswith("connect-src ws://[::1]:4567")
    for bad in ("https://127.0.0.1:13579", "wss://ncalayer.example.kz:13579", "wss://127.0.0.1",
                "wss://127.0.0.1:13579/x", "wss://u:p@127.0.0.1:13579", "wss://127.0.0.1:99999",
                "wss://127.0.0.1:13579?a=1", "javascript:alert(1)"):
        with pytest.raises(ValueError, match="KZFHIR_PORTAL_NCALAYER_URL"):
            ncalayer_url(bad)
    with pytest.raises(ValueError, match="KZFHIR_PORTAL_NCALAYER_URL"):
        create_app(portal_settings(tmp_path, pki, portal_ncalayer_url="wss://evil.example:13579"))


@pytest.mark.req("AC-08")
@pytest.mark.req("AC-25")
async def test_the_script_protocol_against_the_fake_ncalayer_gives_a_cms_the_portal_accepts(web, auth,
                                                                                          fake_ncalayer):
    """What the script does, step by step, without a browser: the greeting skipped, the request as the script
    sends it, the answer's CMS posted with the page's CSRF token; the consent is written and verifies."""
    await sign_in(web)
    sign_page = await ask_for_signature(web, await web.get("/portal/consents"))
    base64_form = base64.b64encode(form_of(sign_page)).decode("ascii")
    async with connect(fake_ncalayer.url) as socket:
        assert json.loads(await socket.recv()) == {"result": {"version": "1.4"}}
        await socket.send("--heartbeat--")
        assert await socket.recv() == "--heartbeat--"
        await socket.send(json.dumps({"module": "kz.gov.pki.knca.commonUtils",
                                      "method": "createCMSSignatureFromBase64",
                                      "args": ["PKCS12", "SIGNATURE", base64_form, True]}))
        answer = json.loads(await socket.recv())
        fake_ncalayer.cancel = True
        await socket.send(json.dumps({"module": "kz.gov.pki.knca.commonUtils",
                                      "method": "createCMSSignatureFromBase64",
                                      "args": ["PKCS12", "SIGNATURE", base64_form, True]}))
        assert json.loads(await socket.recv()) == {"code": "500", "message": "action.canceled"}
    assert answer["code"] == "200"
    done = await web.post("/portal/consents/sign", data={"csrf_token": csrf(sign_page),
                                                         "cms": answer["responseObject"]})
    assert done.status_code == 303 and done.headers["location"] == "/portal/consents?given=1&signed=1"
    [consent] = await consents_of(web, auth)
    evidence = await verify_cms(base64.b64decode(consent["sourceAttachment"]["data"]), form_of(sign_page), None)
    assert evidence.intact and evidence.valid and evidence.iin == PATIENT_IIN
