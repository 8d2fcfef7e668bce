"""A Slot is booked once (TM-06, fhir_server/telemed/slots.py), on every path: the portal's page, a plain
POST/PUT/PATCH/DELETE of an Appointment, and the entries of a transaction Bundle. Booking makes the Slot busy,
a second booking is 409 in the caller's language, cancelling, moving or deleting the booking frees it."""

from __future__ import annotations

import re
from typing import Any

import pytest

from fhir_server.portal.cabinet import consent_resource
from tests.portal.conftest import csrf, sign_in, store

ADMIN = ("admin", "Practitioner/adm1")


def booking(patient: str, slot: str, status: str = "booked") -> dict[str, Any]:
    return {"resourceType": "Appointment", "status": status, "slot": [{"reference": f"Slot/{slot}"}],
            "start": "2030-01-11T10:00:00+05:00", "end": "2030-01-11T10:30:00+05:00",
            "participant": [{"actor": {"reference": f"Patient/{patient}"}, "status": "accepted"}]}


async def slot_status(web: Any, auth: Any, slot: str) -> str:
    answer = await web.get(f"/Slot/{slot}", headers=auth("patient", "Patient/p1"))
    assert answer.status_code == 200, answer.text
    return str(answer.json()["status"])


@pytest.mark.req("TM-06")
@pytest.mark.req("TM-09")
async def test_a_slot_booked_in_the_portal_is_busy_a_second_booking_is_409_and_cancelling_frees_it(web, auth):
    await sign_in(web)  # Aigerim (p1)
    page = await web.get("/portal/appointments")
    booked = await web.post("/portal/appointments/book", data={"csrf_token": csrf(page), "slot": "sl1"})
    assert booked.status_code == 303, booked.text
    assert await slot_status(web, auth, "sl1") == "busy"

    # Bolat (p2) no longer sees sl1 offered, and the API refuses his booking of it, in Russian when he asks so
    await sign_in(web, "bolat")
    page = await web.get("/portal/appointments")
    assert 'value="sl1"' not in page.text and 'value="sl2"' in page.text
    late = await web.post("/portal/appointments/book", data={"csrf_token": csrf(page), "slot": "sl1"})
    assert late.status_code == 409 and "no longer free" in late.text
    web.cookies.set("kzfhir_lang", "kk")
    late = await web.post("/portal/appointments/book", data={"csrf_token": csrf(page), "slot": "sl1"})
    assert late.status_code == 409 and 'lang="kk"' in late.text and "no longer free" not in late.text
    web.cookies.delete("kzfhir_lang")
    bolat = auth("patient", "Patient/p2")
    direct = await web.post("/Appointment", json=booking("p2", "sl1"), headers={**bolat, "Accept-Language": "ru"})
    assert direct.status_code == 409, direct.text
    assert direct.json()["issue"][0]["code"] == "conflict"
    assert "уже занят" in direct.json()["issue"][0]["diagnostics"]

    # Aigerim cancels on the page: sl1 is free again, and Bolat books it
    await sign_in(web)
    page = await web.get("/portal/appointments")
    aid = re.search(r'action="/portal/appointments/([^/]+)/cancel"', page.text).group(1)  # type: ignore[union-attr]
    assert (await web.post(f"/portal/appointments/{aid}/cancel", data={"csrf_token": csrf(page)})).status_code == 303
    assert await slot_status(web, auth, "sl1") == "free"
    again = await web.post("/Appointment", json=booking("p2", "sl1"), headers=bolat)
    assert again.status_code == 201, again.text
    assert await slot_status(web, auth, "sl1") == "busy"


@pytest.mark.req("TM-06")
async def test_the_rule_holds_for_put_patch_delete_and_transaction_entries(web, auth):
    aigerim, bolat = auth("patient", "Patient/p1"), auth("patient", "Patient/p2")
    first = await web.post("/Appointment", json=booking("p1", "sl2"), headers=aigerim)
    assert first.status_code == 201, first.text
    aid = first.json()["id"]
    assert await slot_status(web, auth, "sl2") == "busy"

    # a transaction naming the busy slot is refused whole; two entries booking one free slot conflict
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0d6f4f2e-0000-4000-8000-000000000001", "resource": booking("p2", "sl3"),
         "request": {"method": "POST", "url": "Appointment"}},
        {"fullUrl": "urn:uuid:0d6f4f2e-0000-4000-8000-000000000002", "resource": booking("p2", "sl3"),
         "request": {"method": "POST", "url": "Appointment"}}]}
    answer = await web.post("/", json=bundle, headers=bolat)
    assert answer.status_code == 409, answer.text
    assert await slot_status(web, auth, "sl3") == "free"  # rolled back with the unit
    bundle["entry"] = bundle["entry"][:1]
    bundle["entry"][0]["resource"] = booking("p2", "sl2")
    assert (await web.post("/", json=bundle, headers=bolat)).status_code == 409
    batch = {**bundle, "type": "batch"}
    answer = await web.post("/", json=batch, headers=bolat)
    assert answer.status_code == 200 and answer.json()["entry"][0]["response"]["status"].startswith("409")

    # moving with PUT frees the old slot and takes the new one
    moved = {**first.json(), "slot": [{"reference": "Slot/sl3"}]}
    assert (await web.put(f"/Appointment/{aid}", json=moved, headers=aigerim)).status_code == 200
    assert (await slot_status(web, auth, "sl2"), await slot_status(web, auth, "sl3")) == ("free", "busy")
    # cancelling with a JSON Patch frees it
    patch = [{"op": "replace", "path": "/status", "value": "cancelled"}]
    patched = await web.patch(f"/Appointment/{aid}", json=patch,
                              headers={**aigerim, "Content-Type": "application/json-patch+json"})
    assert patched.status_code == 200, patched.text
    assert await slot_status(web, auth, "sl3") == "free"
    # a booking that is deleted frees its slot; a Slot made free under a live booking is refused
    second = (await web.post("/Appointment", json=booking("p2", "sl3"), headers=bolat)).json()
    admin = auth(*ADMIN, bin="940140000385")
    slot = (await web.get("/Slot/sl3", headers=admin)).json()
    refused = await web.put("/Slot/sl3", json={**slot, "status": "free"}, headers=admin)
    assert refused.status_code == 409, refused.text
    grant = consent_resource("p2", {"reference": "Practitioner/dr1"}, [], "", write=True)  # "correct": may delete
    await store(web.app, [{**grant, "id": "c-dr1-p2"}])
    doctor = auth("practitioner", "Practitioner/dr1", bin="940140000385")
    deleted = await web.delete(f"/Appointment/{second['id']}", headers=doctor)
    assert deleted.status_code in (200, 204), deleted.text
    assert (await web.get(f"/Appointment/{second['id']}", headers=bolat)).status_code == 410
    assert await slot_status(web, auth, "sl3") == "free"


@pytest.mark.req("TM-06")
async def test_a_slot_closed_for_booking_is_never_booked_and_an_unknown_one_is_not_checked(web, auth):
    admin = auth(*ADMIN, bin="940140000385")
    slot = (await web.get("/Slot/sl1", headers=admin)).json()
    assert (await web.put("/Slot/sl1", json={**slot, "status": "busy-unavailable"}, headers=admin)).status_code == 200
    aigerim = auth("patient", "Patient/p1")
    assert (await web.post("/Appointment", json=booking("p1", "sl1"), headers=aigerim)).status_code == 409
    # a cancelled or waitlisted Appointment holds no slot, and a slot of another system is not ours to check
    assert (await web.post("/Appointment", json=booking("p1", "sl1", "waitlist"), headers=aigerim)).status_code == 201
    assert (await web.post("/Appointment", json=booking("p1", "elsewhere"), headers=aigerim)).status_code == 201


@pytest.mark.req("TM-06")
async def test_two_bookings_of_one_slot_sent_at_once_one_wins(web, auth):
    import asyncio

    aigerim, bolat = auth("patient", "Patient/p1"), auth("patient", "Patient/p2")
    answers = await asyncio.gather(web.post("/Appointment", json=booking("p1", "sl3"), headers=aigerim),
                                   web.post("/Appointment", json=booking("p2", "sl3"), headers=bolat))
    assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
    assert await slot_status(web, auth, "sl3") == "busy"
