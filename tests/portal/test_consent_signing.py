"""Consents given and revoked in the cabinet, optionally signed with the person's EDS (AC-08, AC-25): the public
offer accepted (TM-03) and informed consent given (TM-07) with their texts, and a signed consent carrying its
signature as ``Consent.sourceAttachment`` (a CMS encapsulating the signed form, as the server records every
signed consent: signatures/consent_evidence.py). Wrong signatures are refused before anything is written."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from signing import load_signer, sign_cms, verify_cms
from tests.portal.conftest import PATIENT_IIN, csrf, sign_in, store

KZ = "https://fhir.kzfhir.kz"
OFFER_URL = "https://poliklinika7.kz/offer/telemedicine"


def offer(version: str = "2", issued: str = "2026-11-01T09:00:00+05:00") -> dict[str, Any]:
    return {"resourceType": "Contract", "id": f"offer-v{version}", "url": OFFER_URL, "version": version,
            "status": "executable", "issued": issued, "title": "Публичная оферта: телемедицинские услуги",
            "author": {"reference": "Organization/org1"},
            "type": {"coding": [{"system": f"{KZ}/CodeSystem/kz-contract-type", "code": "public-offer"}]},
            "term": [{"text": "Консультация 20 минут; оплата ГОБМП",
                      "offer": {"text": "Акцептом оферты является согласие пациента в кабинете"}}]}


def form_of(page: httpx.Response) -> bytes:
    found = re.search(r'<textarea id="form-base64" readonly rows="3">([^<]*)</textarea>', page.text)
    assert found, page.text
    return base64.b64decode(html.unescape(found.group(1)))


async def signed(pki: Path, content: bytes, who: str = "doctor") -> str:
    """What NCALayer gives back for the person's signing key (the test PKI's "doctor" has the patient's IIN)."""
    signer = load_signer(pki / f"{who}.key.pem", pki / f"{who}.cert.pem")
    return base64.b64encode(await sign_cms(content, signer)).decode("ascii")


async def consents_of(web: httpx.AsyncClient, auth: Any) -> list[dict[str, Any]]:
    bundle = (await web.get("/Consent?patient=Patient/p1", headers=auth("patient", "Patient/p1"))).json()
    return [e["resource"] for e in bundle.get("entry", [])]


@pytest.mark.req("AC-08")
@pytest.mark.req("AC-25")
@pytest.mark.req("TM-03")
async def test_the_offer_accepted_with_the_eds_carries_the_signed_form(web, auth, pki):
    await store(web.app, [offer("1", "2026-10-01T09:00:00+05:00"), offer("2")])
    await sign_in(web)
    page = await web.get("/portal/consents")
    assert page.status_code == 200
    assert "Публичная оферта: телемедицинские услуги" in page.text and f"{OFFER_URL}|2" in page.text
    assert f"{OFFER_URL}|1" not in page.text  # only the current version is offered
    asked = await web.post("/portal/consents/offer", data={"csrf_token": csrf(page), "offer": f"{OFFER_URL}|2",
                                                           "eds": "yes"})
    assert asked.status_code == 303 and asked.headers["location"] == "/portal/consents/sign"
    assert await consents_of(web, auth) == []  # nothing is written before the signature
    sign_page = await web.get("/portal/consents/sign")
    assert sign_page.status_code == 200
    form = form_of(sign_page)
    text = form.decode("utf-8")
    assert text.startswith("Acceptance of the public offer") and f"{OFFER_URL}|2" in text
    assert "Консультация 20 минут" in text and "Patient/p1" in text

    token = csrf(sign_page)
    refusals = [("not base64 at all", 400, "Paste the signature"),
                (await signed(pki, b"another text"), 422, "not over this text"),
                (await signed(pki, form, "doctor-auth"), 422, "authentication key"),
                (await signed(pki, form, "doctor-ec"), 422, "is not yours")]
    for cms_text, status, says in refusals:
        answer = await web.post("/portal/consents/sign", data={"csrf_token": token, "cms": cms_text})
        assert answer.status_code == status and says in answer.text, (status, answer.text[-600:])
    assert await consents_of(web, auth) == []

    done = await web.post("/portal/consents/sign", data={"csrf_token": token, "cms": await signed(pki, form)})
    assert done.status_code == 303, re.findall(r"notice error[^<]*<", done.text)
    assert done.headers["location"] == "/portal/consents?given=1&signed=1"
    [consent] = await consents_of(web, auth)
    assert consent["policy"] == [{"uri": f"{OFFER_URL}|2"}] and consent["status"] == "active"
    source = consent["sourceAttachment"]
    assert source["contentType"] == "application/pkcs7-mime" and source["language"] == "en"
    evidence = await verify_cms(base64.b64decode(source["data"]), None, None)  # the CMS encapsulates the form
    assert evidence.intact and evidence.valid and evidence.iin == PATIENT_IIN
    assert await verify_cms(base64.b64decode(source["data"]), form, None) == evidence
    page = await web.get(done.headers["location"])
    assert "It carries your EDS signature" in page.text and "signed with EDS" in page.text
    assert "You accepted this version on" in page.text
    assert (await web.get("/portal/consents/sign")).headers["location"] == "/portal/consents"  # used once


@pytest.mark.req("AC-01")
@pytest.mark.req("AC-08")
@pytest.mark.req("TM-07")
async def test_a_consent_given_and_revoked_with_the_eds_changes_access_and_keeps_both_signatures(web, auth, pki):
    await sign_in(web)
    page = await web.get("/portal/consents")
    assert "Informed consent to remote medical services" in page.text
    informed = await web.post("/portal/consents/informed", data={"csrf_token": csrf(page)})  # unsigned: as before
    assert informed.status_code == 303
    asked = await web.post("/portal/consents/give", data={
        "csrf_token": csrf(page), "grantee_kind": "practitioner", "grantee": "dr1", "classes": "Observation",
        "eds": "yes"})
    assert asked.status_code == 303 and asked.headers["location"] == "/portal/consents/sign"
    sign_page = await web.get("/portal/consents/sign")
    form = form_of(sign_page)
    assert "Practitioner/dr1" in form.decode() and "Observation" in form.decode()
    done = await web.post("/portal/consents/sign", data={"csrf_token": csrf(sign_page),
                                                         "cms": await signed(pki, form)})
    assert done.status_code == 303
    doctor = auth("practitioner", "Practitioner/dr1", bin="940140000385")
    seen = (await web.get("/Observation?patient=Patient/p1", headers=doctor)).json()
    assert len(seen.get("entry", [])) == 4
    privacy = next(c for c in await consents_of(web, auth) if c.get("provision"))
    assert privacy["sourceAttachment"]["contentType"] == "application/pkcs7-mime"
    kinds = sorted(c["category"][0]["coding"][0]["code"] for c in await consents_of(web, auth))
    assert kinds == ["59284-0", "informed-consent"]

    page = await web.get("/portal/consents")
    asked = await web.post(f"/portal/consents/{privacy['id']}/revoke", data={"csrf_token": csrf(page), "eds": "yes"})
    assert asked.status_code == 303 and asked.headers["location"] == "/portal/consents/sign"
    sign_page = await web.get("/portal/consents/sign")
    form = form_of(sign_page)
    assert form.decode().startswith("Revocation of my consent") and f"Consent/{privacy['id']}" in form.decode()
    still = (await web.get("/Observation?patient=Patient/p1", headers=doctor)).json()
    assert len(still.get("entry", [])) == 4  # not revoked until signed
    done = await web.post("/portal/consents/sign", data={"csrf_token": csrf(sign_page),
                                                         "cms": await signed(pki, form)})
    assert done.status_code == 303 and done.headers["location"] == "/portal/consents?revoked=1&signed=1"
    gone = (await web.get("/Observation?patient=Patient/p1", headers=doctor)).json()
    assert not gone.get("entry")
    patient = auth("patient", "Patient/p1")
    revoked = (await web.get(f"/Consent/{privacy['id']}", headers=patient)).json()
    first = (await web.get(f"/Consent/{privacy['id']}/_history/1", headers=patient)).json()
    assert revoked["status"] == "inactive" and first["status"] == "active"
    revocation = await verify_cms(base64.b64decode(revoked["sourceAttachment"]["data"]), None, None)
    giving = await verify_cms(base64.b64decode(first["sourceAttachment"]["data"]), None, None)
    assert revocation.valid and giving.valid and revocation.iin == giving.iin == PATIENT_IIN
    assert revoked["sourceAttachment"]["data"] != first["sourceAttachment"]["data"]


async def test_signing_pages_in_kazakh_and_a_stale_offer_is_refused(web, pki):
    await store(web.app, [offer()])
    await sign_in(web)
    web.cookies.set("kzfhir_lang", "kk")
    page = await web.get("/portal/consents")
    assert 'lang="kk"' in page.text and "Офертаны қабылдау" in page.text
    stale = await web.post("/portal/consents/offer", data={"csrf_token": csrf(page), "offer": f"{OFFER_URL}|1"})
    assert stale.status_code == 409 and "күшінде емес" in stale.text
    await web.post("/portal/consents/give", data={"csrf_token": csrf(page), "grantee_kind": "practitioner",
                                                 "grantee": "dr1", "eds": "yes"})
    sign_page = await web.get("/portal/consents/sign")
    assert "ЭЦҚ-мен қол қою" in sign_page.text
    assert form_of(sign_page).decode().startswith("Медициналық жазбаларыма қолжетімділікке келісім")
    wrong = await web.post("/portal/consents/sign", data={"csrf_token": csrf(sign_page),
                                                          "cms": await signed(pki, b"x", "doctor")})
    assert wrong.status_code == 422 and "қолтаңба" in wrong.text.lower()
    assert (await web.post("/portal/consents/sign", data={"cms": "x"})).status_code == 403  # CSRF as every POST


@pytest.mark.req("AC-09")
@pytest.mark.req("AC-08")
async def test_a_representative_signs_with_their_own_eds_for_the_person_represented(web, settings, pki):
    from fhir_server.identity.issuer import IdentityConfig
    from fhir_server.identity.registration import new_user
    from fhir_server.identity.registry import Registry
    from tests.portal.conftest import PASSWORD

    Registry(IdentityConfig.from_settings(settings).database).add_user(
        new_user("aunt", PASSWORD, "related-person", "RelatedPerson/rp-aunt", None))
    await store(web.app, [{
        "resourceType": "RelatedPerson", "id": "rp-aunt", "active": True, "patient": {"reference": "Patient/p2"},
        "identifier": [{"system": "https://fhir.kzfhir.kz/sid/iin", "value": "123456789012"}],  # doctor-ec's IIN
        "extension": [{"url": "https://fhir.kzfhir.kz/StructureDefinition/kz-representative-authority",
                       "extension": [{"url": "verified", "valueBoolean": True}]}]}])
    await sign_in(web, "aunt")
    page = await web.get("/portal/consents")
    assert page.status_code == 200, page.text
    asked = await web.post("/portal/consents/give", data={"csrf_token": csrf(page), "grantee_kind": "practitioner",
                                                         "grantee": "dr1", "eds": "yes"})
    assert asked.headers["location"] == "/portal/consents/sign"
    sign_page = await web.get("/portal/consents/sign")
    form = form_of(sign_page)
    assert "Patient/p2" in form.decode()
    someone = await web.post("/portal/consents/sign", data={"csrf_token": csrf(sign_page),
                                                            "cms": await signed(pki, form, "doctor")})
    assert someone.status_code == 422 and "is not yours" in someone.text  # Aigerim's certificate, not the aunt's
    done = await web.post("/portal/consents/sign", data={"csrf_token": csrf(sign_page),
                                                         "cms": await signed(pki, form, "doctor-ec")})
    assert done.status_code == 303, re.findall(r"notice error[^<]*<", done.text)
