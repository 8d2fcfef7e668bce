"""Public offer and informed consent (TM-03, TM-07, AC-04): the organisation publishes versioned offer terms;
booking a remote service needs the patient's recorded acceptance of the current version and informed consent,
and is refused with an OperationOutcome saying what is missing otherwise. Security is on."""

from __future__ import annotations

from typing import Any

import pytest

from tests.orders.conftest import CHANNEL, KZ, OpenWorld

BIN = "940140000385"
OFFER_URL = "https://poliklinika7.kz/offer/telemedicine"
CATEGORY = f"{KZ}/CodeSystem/kz-consent-category"
SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"


def offer(version: str, issued: str, terms: str = "Консультация 20 минут; оплата ГОБМП") -> dict[str, Any]:
    return {"resourceType": "Contract", "url": OFFER_URL, "version": version, "status": "executable",
            "issued": issued, "title": "Публичная оферта: телемедицинские услуги",
            "author": {"reference": "Organization/org1"},
            "type": {"coding": [{"system": f"{KZ}/CodeSystem/kz-contract-type", "code": "public-offer"}]},
            "term": [{"text": terms, "offer": {"text": "Акцептом оферты является согласие пациента в кабинете"}}]}


def acceptance(version: str, status: str = "active") -> dict[str, Any]:
    return {"resourceType": "Consent", "status": status, "scope": {"coding": [{"system": SCOPE, "code": "treatment"}]},
            "category": [{"coding": [{"system": CATEGORY, "code": "public-offer-acceptance"}]}],
            "patient": {"reference": "Patient/p1"}, "performer": [{"reference": "Patient/p1"}],
            "dateTime": "2026-01-10T09:00:00+05:00", "policy": [{"uri": f"{OFFER_URL}|{version}"}]}


# R4 ppc-1: a Consent names a policy or a policy rule; writes enforce the invariant (issue 14 §2)
OPTIN = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]}


def informed(status: str = "active") -> dict[str, Any]:
    return {"resourceType": "Consent", "status": status, "scope": {"coding": [{"system": SCOPE, "code": "treatment"}]},
            "category": [{"coding": [{"system": CATEGORY, "code": "informed-consent"}]}],
            "patient": {"reference": "Patient/p1"}, "performer": [{"reference": "Patient/p1"}],
            "dateTime": "2026-01-10T09:00:00+05:00", "policyRule": OPTIN,
            "provision": {"period": {"start": "2026-01-01"}}}


def booking(start: str = "2026-02-01T10:00:00+05:00", remote: bool = True) -> dict[str, Any]:
    return {"resourceType": "Appointment", "status": "booked", **({"extension": [CHANNEL]} if remote else {}),
            "serviceType": [{"coding": [{"system": f"{KZ}/CodeSystem/kz-service", "code": "A01.001.000"}]}],
            "start": start, "end": start.replace(":00:00", ":20:00"),
            "participant": [{"actor": {"reference": "Patient/p1"}, "status": "accepted"},
                            {"actor": {"reference": "Practitioner/dr1"}, "status": "accepted"}]}


def _diagnostics(r: Any) -> list[str]:
    return [i["diagnostics"] for i in r.json()["issue"]]


@pytest.mark.req("TM-03")
@pytest.mark.req("TM-07")
@pytest.mark.req("AC-04")
async def test_remote_booking_needs_the_current_offer_accepted_and_informed_consent(open_world: OpenWorld):
    async with open_world(remote_booking_consent=True) as w:
        organisation = w.auth("system", bin=BIN)
        patient = w.as_("Patient/p1")
        # nothing published yet: the booking says so
        r = await w.client.post("/Appointment", json=booking(), headers=patient)
        assert r.status_code == 422 and "no public offer" in r.text
        # an offer without its essential terms is no offer
        incomplete = offer("1", "2026-01-05T00:00:00+05:00")
        del incomplete["term"], incomplete["version"]
        r = await w.client.post("/Contract", json=incomplete, headers=organisation)
        assert r.status_code == 422, r.text
        assert (await w.client.post("/Contract", json=offer("1", "2026-01-05T00:00:00+05:00"),
                                    headers=organisation)).status_code == 201
        # the patient sees the offer (public terms), and booking without accepting it is refused, item by item
        offers = await w.client.get(f"/Contract?url={OFFER_URL}", headers=patient)
        assert [e["resource"]["version"] for e in offers.json()["entry"]] == ["1"]
        r = await w.client.post("/Appointment", json=booking(), headers=patient)
        assert r.status_code == 422
        said = _diagnostics(r)
        assert len(said) == 2 and "version 1" in said[0] and f"'{OFFER_URL}|1'" in said[0] and "TM-07" in said[1]
        assert r.json()["issue"][0]["expression"] == ["Appointment.participant[0].actor"]

        # the doctor proposes the informed consent (AC-04); only the patient makes it active
        proposed = await w.client.post("/Consent", json=informed("proposed"), headers=w.as_("Practitioner/dr1"))
        assert proposed.status_code == 201, proposed.text
        forged = await w.client.post("/Consent", json=informed(), headers=w.as_("Practitioner/dr1"))
        assert forged.status_code == 403
        given = {**proposed.json(), "status": "active"}
        assert (await w.client.put(f"/Consent/{given['id']}", json=given, headers=patient)).status_code == 200
        r = await w.client.post("/Appointment", json=booking(), headers=patient)
        assert r.status_code == 422 and len(_diagnostics(r)) == 1 and "public offer" in r.text
        assert (await w.client.post("/Consent", json=acceptance("1"), headers=patient)).status_code == 201
        r = await w.client.post("/Appointment", json=booking(), headers=patient)
        assert r.status_code == 201, r.text
        assert (await w.client.post("/Appointment", json=booking(remote=False), headers=patient)).status_code == 201

        # a new version of the offer needs a new acceptance; a version's terms cannot change under it
        v2 = await w.client.post("/Contract", json=offer("2", "2026-01-15T00:00:00+05:00", "Консультация 30 минут"),
                                 headers=organisation)
        assert v2.status_code == 201
        changed = {**v2.json(), "term": [{**v2.json()["term"][0], "text": "Консультация 5 минут"}]}
        r = await w.client.put(f"/Contract/{changed['id']}", json=changed, headers=organisation)
        assert r.status_code == 422 and "new version" in r.text
        r = await w.client.post("/Appointment", json=booking("2026-02-02T10:00:00+05:00"), headers=patient)
        assert r.status_code == 422 and "version 2" in r.text
        assert (await w.client.post("/Consent", json=acceptance("2"), headers=patient)).status_code == 201
        assert (await w.client.post("/Appointment", json=booking("2026-02-02T10:00:00+05:00"),
                                    headers=patient)).status_code == 201

        # the patient sees and revokes their consent; the next remote booking is refused again
        mine = (await w.client.get("/Consent?patient=Patient/p1&category="
                                   f"{CATEGORY}|informed-consent", headers=patient)).json()["entry"]
        assert [e["resource"]["status"] for e in mine] == ["active"]
        revoked = {**mine[0]["resource"], "status": "inactive"}
        assert (await w.client.put(f"/Consent/{revoked['id']}", json=revoked, headers=patient)).status_code == 200
        r = await w.client.post("/Appointment", json=booking("2026-02-03T10:00:00+05:00"), headers=patient)
        assert r.status_code == 422 and "TM-07" in r.text


@pytest.mark.req("TM-03")
@pytest.mark.req("TM-07")
async def test_consents_and_booking_in_one_transaction_and_refusals_roll_it_back(open_world: OpenWorld):
    async with open_world(remote_booking_consent=True) as w:
        published = await w.client.post("/Contract", json=offer("1", "2026-01-05T00:00:00+05:00"),
                                        headers=w.auth("system", bin=BIN))
        assert published.status_code == 201
        patient = w.as_("Patient/p1")

        def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
            return {"resourceType": "Bundle", "type": "transaction", "entry": [
                {"resource": res, "request": {"method": "POST", "url": res["resourceType"]}} for res in resources]}

        r = await w.client.post("/", json=bundle(informed(), booking()), headers=patient)
        assert r.status_code == 422 and "public offer" in r.text
        nothing = await w.client.get("/Consent?patient=Patient/p1&category=" f"{CATEGORY}|informed-consent",
                                     headers=patient)
        assert nothing.json().get("entry", []) == []  # the refused booking took its Bundle's consent with it
        r = await w.client.post("/", json=bundle(acceptance("1"), informed(), booking()), headers=patient)
        assert r.status_code == 200, r.text
        # a doctor booking for a patient is held to the same terms: p2 accepted nothing
        for_p2 = booking()
        for_p2["participant"][0]["actor"]["reference"] = "Patient/p2"
        for_p2["participant"][1]["actor"]["reference"] = "Practitioner/dr2"
        r = await w.client.post("/Appointment", json=for_p2, headers=w.as_("Practitioner/dr2"))
        assert r.status_code == 422 and "Patient/p2 has not accepted" in r.text
        log = (await w.client.get("/Patient/p1/$access-log?_count=50", headers=patient)).json()
        assert any(e["resource"]["outcome"] != "0" for e in log["entry"])  # the refused attempt is on record
