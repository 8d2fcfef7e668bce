"""A consilium's opinions (TM-08) on every write path, security on: a participant's opinion is a Communication
``basedOn`` the consilium request; the requester finds them with ``Communication?based-on=``. A practitioner who
takes no part is refused with an audited 403 (listed in the patient's access log) even though the patient's
Consent lets them write about the patient, on a plain POST and inside a transaction; a participant cannot sign
another's opinion; the MIS (system role) may write an opinion only from a participant, about the request's
patient; a finished consilium takes no more. Requests other than consilia are not concerned."""

from __future__ import annotations

from typing import Any

import pytest

from tests.orders.conftest import FHIR_JSON, KZ, OpenWorld, World, consent_for

FORM = "https://fhir.kzfhir.kz/CodeSystem/kz-remote-service-form"


def request(rid: str, status: str = "active", category: str = "consilium") -> dict[str, Any]:
    return {"resourceType": "ServiceRequest", "id": rid, "status": status, "intent": "order",
            "category": [{"coding": [{"system": FORM, "code": category}]}], "code": {"text": "Resistant hypertension"},
            "subject": {"reference": "Patient/p1"}, "requester": {"reference": "Practitioner/dr1"},
            "performer": [{"reference": "Practitioner/dr1"}, {"reference": "Practitioner/dr3"}],
            "authoredOn": "2026-11-25T09:00:00+05:00"}


def to_the_mis(consent: dict[str, Any]) -> dict[str, Any]:
    """The Consent naming the MIS's organisation by its BIN (how a Consent names an organisation's clients)."""
    for actor in consent["provision"]["provision"][0]["actor"]:
        actor["reference"] = {"identifier": {"system": f"{KZ}/sid/bin", "value": "940140000385"}}
    return consent


EXTRA = [{"resourceType": "Practitioner", "id": "dr3", "name": [{"family": "Нурланова"}]},
         consent_for("Patient/p1", "Practitioner/dr3", cid="c3"),
         *(to_the_mis(consent_for(p, "Organization/org1", cid=f"c-org-{p[8:]}")) for p in ("Patient/p1", "Patient/p2")),
         request("cons1"), request("cons-done", "completed"), request("ref1", category="consultation")]


def opinion(sender: str, based_on: str = "ServiceRequest/cons1", subject: str = "Patient/p1",
            text: str = "Add a diuretic; check potassium in a week.") -> dict[str, Any]:
    return {"resourceType": "Communication", "status": "completed", "basedOn": [{"reference": based_on}],
            "subject": {"reference": subject}, "sender": {"reference": sender},
            "recipient": [{"reference": "Practitioner/dr1"}], "sent": "2026-11-26T10:00:00+05:00",
            "payload": [{"contentString": text}]}


async def post(w: World, body: dict[str, Any], headers: dict[str, str]) -> Any:
    return await w.client.post("/Communication", json=body, headers={**headers, **FHIR_JSON})


@pytest.mark.req("TM-08")
async def test_participants_give_opinions_others_are_refused_and_audited(open_world: OpenWorld) -> None:
    async with open_world(EXTRA) as w:
        given = await post(w, opinion("Practitioner/dr3"), w.as_("Practitioner/dr3"))
        assert given.status_code == 201, given.text
        found = await w.client.get("/Communication", params={"based-on": "ServiceRequest/cons1"},
                                   headers=w.as_("Practitioner/dr1"))
        assert [e["resource"]["id"] for e in found.json()["entry"]] == [given.json()["id"]]  # the requester reads it

        # dr2 may write about p1 (the Consent), but takes no part in the consilium
        refused = await post(w, opinion("Practitioner/dr2"), w.as_("Practitioner/dr2"))
        assert refused.status_code == 403, refused.text
        assert "only the participants of the consilium ServiceRequest/cons1" in refused.text
        assert (await post(w, {**opinion("Practitioner/dr2"), "basedOn": [{"reference": "ServiceRequest/ref1"}]},
                           w.as_("Practitioner/dr2"))).status_code == 201  # another kind of request: not concerned
        # nor in a transaction: the whole unit is refused
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "BP"},
                          "subject": {"reference": "Patient/p1"}}, "request": {"method": "POST", "url": "Observation"}},
            {"resource": opinion("Practitioner/dr2"), "request": {"method": "POST", "url": "Communication"}}]}
        unit = await w.client.post("/", json=bundle, headers={**w.as_("Practitioner/dr2"), **FHIR_JSON})
        assert unit.status_code == 403 and "entry 1" in unit.text, unit.text
        # a participant writes their own opinion, not another's
        forged = await post(w, opinion("Practitioner/dr1"), w.as_("Practitioner/dr3"))
        assert forged.status_code == 403 and "their own opinion" in forged.text
        # nor may the patient write a doctor's opinion (patients may write Communications, not as a participant)
        posing = await post(w, opinion("Practitioner/dr3"), w.as_("Patient/p1"))
        assert posing.status_code == 403, posing.text
        # a finished consilium takes no more
        late = await post(w, opinion("Practitioner/dr3", "ServiceRequest/cons-done"), w.as_("Practitioner/dr3"))
        assert late.status_code == 409, late.text

        # the refusals are in the audit trail under the patient (their access log lists them)
        await w.store.audit.sync()
        events = [e for _, e in await w.store.audit.events("Patient/p1", 500)]
        refusals = [e for e in events if e["outcome"] != "0" and "consilium" in e.get("outcomeDesc", "")]
        who = {next(a["who"]["reference"] for a in e["agent"] if a.get("requestor")) for e in refusals}
        assert who == {"Practitioner/dr2", "Practitioner/dr3", "Patient/p1"}
        opinions = await w.client.get("/Communication", params={"based-on": "ServiceRequest/cons1"},
                                      headers=w.as_("Practitioner/dr1"))
        assert len(opinions.json()["entry"]) == 1  # nothing refused was written


@pytest.mark.req("TM-08")
async def test_the_mis_writes_opinions_only_from_participants_about_the_patient(open_world: OpenWorld) -> None:
    async with open_world(EXTRA) as w:
        mis = w.auth("system", bin="940140000385")
        outsider = await post(w, opinion("Practitioner/dr2"), mis)
        assert outsider.status_code == 422, outsider.text
        assert outsider.json()["issue"][0]["expression"] == ["Communication.sender"]
        elsewhere = await post(w, opinion("Practitioner/dr3", subject="Patient/p2"), mis)
        assert elsewhere.status_code == 422, elsewhere.text
        assert elsewhere.json()["issue"][0]["expression"] == ["Communication.subject"]
        ok = await post(w, opinion("Practitioner/dr3"), mis)
        assert ok.status_code == 201, ok.text
        # changing a stored opinion to another sender is judged the same way (PUT)
        changed = {**ok.json(), "sender": {"reference": "Practitioner/dr2"}}
        put = await w.client.put(f"/Communication/{ok.json()['id']}", json=changed, headers={**mis, **FHIR_JSON})
        assert put.status_code == 422, put.text
