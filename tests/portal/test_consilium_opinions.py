"""Answering a consilium request from the console (TM-08): a participant writes their opinion on the page, the
portal writes it through the API as the MIS would (a Communication ``basedOn`` the request, telemed/consilium.py),
and it appears under the request; the requester sees it in their console. A practitioner who takes no part is
refused by the API (403, its reason on the page), though the patient's Consent lets them write about the patient.
Plain forms, no JavaScript."""

from __future__ import annotations

import re

import httpx
import pytest

from fhir_server.config import Settings
from fhir_server.identity.issuer import IdentityConfig
from fhir_server.identity.registration import new_user
from fhir_server.identity.registry import Registry
from fhir_server.portal.cabinet import consent_resource
from tests.portal.conftest import MIS_BIN, PASSWORD, csrf, sign_in, store
from tests.portal.test_console_consilium import consilium


def grant(practitioner: str, *, write: bool) -> dict[str, object]:
    return {**consent_resource("p1", {"reference": f"Practitioner/{practitioner}"}, [], "", write=write),
            "id": f"c-{practitioner}"}


@pytest.mark.req("TM-08")
async def test_a_participant_answers_a_consilium_and_the_requester_sees_it(web: httpx.AsyncClient,
                                                                           settings: Settings) -> None:
    registry = Registry(IdentityConfig.from_settings(settings).database)
    registry.add_user(new_user("dr.seitkali", PASSWORD, "practitioner", "Practitioner/dr2", MIS_BIN))
    registry.add_user(new_user("dr.omar", PASSWORD, "practitioner", "Practitioner/dr4", MIS_BIN))
    await store(web.app, [grant("dr1", write=True), grant("dr2", write=False), grant("dr4", write=True),  # type: ignore[attr-defined]
                          consilium("cons1", "p1")])

    await sign_in(web, "dr.serik")  # Practitioner/dr1, a performer
    console = await web.get("/portal/console")
    assert 'id="opinions-cons1"' in console.text and "No opinion yet." in console.text
    empty = await web.post("/portal/console/consilium/cons1/opinion",
                           data={"csrf_token": csrf(console), "opinion": " "})
    assert empty.status_code == 400 and "Write the opinion first." in empty.text
    sent = await web.post("/portal/console/consilium/cons1/opinion", data={
        "csrf_token": csrf(console), "opinion": "Add a thiazide diuretic; potassium in a week."})
    assert sent.status_code == 303 and sent.headers["location"] == "/portal/console?opinion=cons1#consilium-cons1"
    after = await web.get("/portal/console?opinion=cons1")
    assert "Your opinion was recorded and sent to the requester." in after.text
    row = re.search(r'<tr id="opinions-cons1">(.*?)</tr>', after.text, re.S)
    assert row is not None and "Dr Ivanov:" in row.group(1)
    assert "Add a thiazide diuretic; potassium in a week." in row.group(1) and "Add to your opinion" in row.group(1)
    web.cookies.clear()

    await sign_in(web, "dr.omar")  # may write about p1, but takes no part
    mine = await web.get("/portal/console")
    assert 'id="consilium-cons1"' not in mine.text  # not listed for him
    refused = await web.post("/portal/console/consilium/cons1/opinion", data={
        "csrf_token": csrf(mine), "opinion": "I would operate."})
    assert refused.status_code == 403, refused.text
    assert "only the participants of the consilium ServiceRequest/cons1" in refused.text
    web.cookies.clear()

    await sign_in(web, "dr.seitkali")  # the requester, in Russian
    web.cookies.set("kzfhir_lang", "ru")
    theirs = await web.get("/portal/console")
    row = re.search(r'<tr id="opinions-cons1">(.*?)</tr>', theirs.text, re.S)
    assert row is not None and "Мнения участников" in row.group(1)
    assert "Add a thiazide diuretic" in row.group(1) and "I would operate." not in row.group(1)
