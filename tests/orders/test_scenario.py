"""The remote service end to end, security on, against real local services (a video service, the NEHP and the
payment system): offer published and accepted → informed consent → booking from a free slot (MD-B) → notices →
consultation with its session, a message and an image → the finished MD-D record signed with the doctor's EDS
(TM-10) → NEHP and payment delivery on their own, acknowledged, the NEHP id written back (no $nehp-submit) →
recommendations tied to the care plan (TM-16) → the patient's access log and notifications show it all."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fhir_server.jobs.nehp_delivery import NEHP_RECORD_SYSTEM
from fhir_server.jobs.runtime import build_worker
from profiles import examples_dir
from signing import Signer, sign_bundle
from tests.mappings.conftest import enrich, load_set
from tests.orders.conftest import KZ, OpenWorld, consent_for
from tests.orders.doubles import AckingReceiver, VideoService
from tests.signatures.helpers import PRACTITIONER_URN, document_bundle
from tests.signing.conftest import pki_dir, signer_for

__all__ = ["pki_dir", "signer_for"]  # the session's test PKI (its doctor signs the record)

PATIENT, DOCTOR, ORG_BIN = "Patient/kz-patient-1", "Practitioner/kz-practitioner-1", "150640000010"
OFFER = "https://gp1.kz/offer/remote"
CATEGORY = f"{KZ}/CodeSystem/kz-consent-category"
TREATMENT = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "treatment"}]}


def _seed() -> list[dict[str, Any]]:
    resources = [{k: v for k, v in r.items() if k != "meta"} for r in enrich(load_set()).values()]
    for r in resources:
        if r["resourceType"] == "Encounter":
            r["status"] = "planned"
            r["period"] = {"start": "2026-01-20T10:00:00+05:00"}
    schedule = {"resourceType": "Schedule", "id": "sch1", "actor": [{"reference": DOCTOR}]}
    slots = [{"resourceType": "Slot", "id": f"slot{n}", "schedule": {"reference": "Schedule/sch1"}, "status": s,
              "start": f"2026-01-20T1{n}:00:00+05:00", "end": f"2026-01-20T1{n}:20:00+05:00"}
             for n, s in enumerate(("free", "busy"))]
    plan = {"resourceType": "CarePlan", "id": "cp1", "status": "active", "intent": "plan",
            "subject": {"reference": PATIENT}, "title": "Наблюдение после телеконсультации"}
    return [*resources, schedule, *slots, plan, consent_for(PATIENT, DOCTOR, cid="c-doctor")]


def _record() -> dict[str, Any]:
    """The consultation's record as a document Bundle the doctor signs (TM-10): the Composition of the remote
    service about the patient and the Encounter, authored by the signing doctor (the test PKI's certificate)."""
    bundle = document_bundle()
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Patient"]
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if "subject" in resource:
            resource["subject"] = {"reference": PATIENT}
        if resource["resourceType"] == "Composition":
            resource["encounter"] = {"reference": "Encounter/kz-encounter-1"}
            resource["title"] = "Телеконсультация: заключение"
    return bundle


def _consent(code: str, **more: Any) -> dict[str, Any]:
    return {"resourceType": "Consent", "status": "active", "scope": TREATMENT, "patient": {"reference": PATIENT},
            "category": [{"coding": [{"system": CATEGORY, "code": code}]}], "performer": [{"reference": PATIENT}],
            "dateTime": "2026-01-15T09:00:00+05:00", **more}


@pytest.mark.req("TM-02")
@pytest.mark.req("TM-03")
@pytest.mark.req("TM-07")
@pytest.mark.req("TM-20")
@pytest.mark.req("TM-10")
@pytest.mark.req("TM-11")
@pytest.mark.req("TM-16")
@pytest.mark.req("TM-19")
async def test_the_whole_remote_service(open_world: OpenWorld, video: VideoService, pki_dir: Path,
                                        signer_for: Callable[[str], Signer]):
    nehp, payment = AckingReceiver(), AckingReceiver()
    settings = {"remote_booking_consent": True, "video_service_url": await video.start(),
                "video_service_token": video.token, "nehp_url": await nehp.start(),
                "payment_url": await payment.start(), "nehp_auto_submit": True, "trust_dir": pki_dir / "trust"}
    try:
        async with open_world(_seed(), **settings) as w:
            await w.app.state.outbox_worker.stop()  # the test drives deliveries itself
            patient, doctor = w.as_(PATIENT), w.as_(DOCTOR)
            offer = {"resourceType": "Contract", "url": OFFER, "version": "1", "status": "executable",
                     "issued": "2026-01-01T00:00:00+05:00", "title": "Публичная оферта",
                     "author": {"reference": "Organization/kz-organization-1"},
                     "type": {"coding": [{"system": f"{KZ}/CodeSystem/kz-contract-type", "code": "public-offer"}]},
                     "term": [{"text": "Телеконсультация 20 минут", "offer": {"text": "Акцепт в личном кабинете"}}]}
            r = await w.client.post("/Contract", json=offer, headers=w.auth("system", bin=ORG_BIN))
            assert r.status_code == 201, r.text

            free = (await w.client.get("/Slot?schedule=Schedule/sch1&status=free", headers=patient)).json()
            slot = free["entry"][0]["resource"]
            booking = copy.deepcopy(json.loads((examples_dir() / "valid" / "Appointment-kz-appointment-1.json")
                                               .read_text()))
            booking.pop("id"), booking.pop("meta")
            booking["participant"][0]["actor"]["reference"] = PATIENT
            booking["participant"][1]["actor"]["reference"] = DOCTOR
            booking |= {"slot": [{"reference": f"Slot/{slot['id']}"}], "start": slot["start"], "end": slot["end"]}
            refused = await w.client.post("/Appointment", json=booking, headers=patient)
            assert refused.status_code == 422 and len(refused.json()["issue"]) == 2
            assert (await w.client.post("/Consent", json=_consent("public-offer-acceptance",
                                        policy=[{"uri": f"{OFFER}|1"}]), headers=patient)).status_code == 201
            optin = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]}
            informed = await w.client.post("/Consent", json=_consent("informed-consent", policyRule=optin),  # ppc-1
                                           headers=patient)
            assert informed.status_code == 201
            r = await w.client.post("/Appointment", json=booking, headers=patient)
            assert r.status_code == 201, r.text
            appointment = r.json()["id"]

            encounter = (await w.client.get("/Encounter/kz-encounter-1", headers=doctor)).json()
            encounter["appointment"] = [{"reference": f"Appointment/{appointment}"}]
            assert (await w.client.put("/Encounter/kz-encounter-1", json=encounter, headers=doctor)).status_code == 200
            assert (await w.op("/Encounter/kz-encounter-1/$consultation-start", DOCTOR)).status_code == 200
            for who in (PATIENT, DOCTOR):
                assert (await w.op("/Encounter/kz-encounter-1/$consultation-join", who)).status_code == 200
            png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 32).decode()
            message = {"resourceType": "Communication", "status": "completed", "subject": {"reference": PATIENT},
                       "encounter": {"reference": "Encounter/kz-encounter-1"}, "sender": {"reference": PATIENT},
                       "payload": [{"contentString": "Фото горла"},
                                   {"contentAttachment": {"contentType": "image/png", "data": png}}]}
            assert (await w.client.post("/Communication", json=message, headers=patient)).status_code == 201
            r = await w.op("/Encounter/kz-encounter-1/$consultation-end", DOCTOR)
            assert r.status_code == 200
            finished = {**r.json(), "status": "finished"}
            r = await w.client.put("/Encounter/kz-encounter-1", json=finished, headers=doctor)
            assert r.status_code == 200, r.text

            # the record, signed with the doctor's EDS: verified on write, the signer recorded (TM-10)
            signed = await sign_bundle(_record(), signer_for("doctor"), "cms", PRACTITIONER_URN)
            tampered = copy.deepcopy(signed)
            tampered["entry"][0]["resource"]["title"] = "changed after signing"
            assert (await w.client.post("/Bundle", json=tampered, headers=doctor)).status_code in (400, 422)
            r = await w.client.post("/Bundle", json=signed, headers=doctor)
            assert r.status_code == 201, r.text
            document = r.json()["id"]
            provenance = (await w.client.get(f"/Provenance?target=Bundle/{document}", headers=patient)).json()
            assert [e["resource"]["signature"][0]["who"] for e in provenance["entry"]]
            verified = await w.client.get(f"/Bundle/{document}/$verify-signature", headers=patient)
            assert verified.status_code == 200, verified.text
            parts = {p["name"]: p for p in verified.json()["parameter"][1]["part"]}
            assert verified.json()["parameter"][0]["valueBoolean"] is True
            assert parts["trusted"]["valueBoolean"] and parts["iin"]["valueString"] == "123456789011"

            # delivery on its own: the finished service is built into the NEHP record and the claim line,
            # delivered and acknowledged, the NEHP id written back — no $nehp-submit (TM-11, TM-13, TM-19)
            worker = build_worker(w.settings, w.store, services=w.app.state.services, base_backoff=0.0)
            assert worker is not None
            await worker.run_once()  # the build request → the NEHP message and the claim line
            await worker.run_once()
            assert len(nehp.bodies) == 1 and len(payment.bodies) == 1
            record = nehp.bodies[0]["payload"]
            assert isinstance(record, dict) and record["patient"]["iin"] == "850315300019"
            assert not any(link in json.dumps(nehp.bodies[0]) for link in video.all_links())
            done = (await w.client.get("/Encounter/kz-encounter-1", headers=doctor)).json()
            assert {"system": NEHP_RECORD_SYSTEM, "value": "NEHP-1"} in done["identifier"]

            # recommendations tied to the care plan, which the patient sees (TM-16)
            advice = {"resourceType": "Communication", "status": "completed", "subject": {"reference": PATIENT},
                      "basedOn": [{"reference": "CarePlan/cp1"}], "sender": {"reference": DOCTOR},
                      "recipient": [{"reference": PATIENT}], "topic": {"coding": [{
                          "system": f"{KZ}/CodeSystem/kz-recommendation-kind", "code": "lifestyle"}]},
                      "payload": [{"contentString": "Полоскать горло 3 раза в день"}]}
            r = await w.client.post("/Communication", json=advice, headers=doctor)
            assert r.status_code == 201, r.text
            recommendation = r.json()["id"]
            mine = (await w.client.get("/Communication?based-on=CarePlan/cp1", headers=patient)).json()
            assert [e["resource"]["payload"][0]["contentString"] for e in mine["entry"]] == [
                "Полоскать горло 3 раза в день"]

            # what the patient sees: who did what with their data, and what they were told
            log = (await w.client.get(f"/{PATIENT}/$access-log?_count=200", headers=patient)).json()
            seen = str([e["resource"] for e in log["entry"]])
            for expected in ("consultation-start", "consultation-join", "consultation-end", f"Bundle/{document}",
                             "Encounter/kz-encounter-1", f"Communication/{recommendation}", DOCTOR):
                assert expected in seen, expected
            with_deliveries = await w.client.get(f"/{PATIENT}/$access-log?_count=200&deliveries=true", headers=patient)
            assert "NEHP-1" in with_deliveries.text  # the NEHP's receipt, documented (TM-13)
            notices = (await w.client.get(f"/{PATIENT}/$notifications?_count=200", headers=patient)).json()
            assert any(e["resource"].get("about") == [{"reference": f"Appointment/{appointment}"}]
                       for e in notices["entry"])  # the booking notice (TM-09)
            assert "Полоскать горло" in json.dumps(notices, ensure_ascii=False)  # the recommendation (TM-16)
    finally:
        await nehp.stop()
        await payment.stop()
