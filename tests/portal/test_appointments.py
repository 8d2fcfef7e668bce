"""My appointments through the pages (TM-06, TM-09): book a free slot, move the booking, cancel it; each is
an Appointment the patient writes through the API, and another patient does not see it."""

from __future__ import annotations

import re

import pytest

from tests.portal.conftest import csrf, sign_in


@pytest.mark.req("TM-06")
@pytest.mark.req("TM-09")
@pytest.mark.req("TM-05")
async def test_book_move_and_cancel_from_free_slots(web, auth):
    await sign_in(web)
    page = await web.get("/portal/appointments")
    assert page.status_code == 200, page.text
    assert page.text.count('action="/portal/appointments/book"') == 3 and "Dr Ivanov" in page.text
    booked = await web.post("/portal/appointments/book", data={"csrf_token": csrf(page), "slot": "sl1"})
    assert booked.status_code == 303, booked.text
    page = await web.get(booked.headers["location"])
    assert "Your visit is booked" in page.text
    assert page.text.count('action="/portal/appointments/book"') == 2  # sl1 is no longer offered to me
    aid = re.search(r'action="/portal/appointments/([^/]+)/move"', page.text).group(1)  # type: ignore[union-attr]
    doctor = auth("practitioner", "Practitioner/dr1", bin="940140000385")
    stored = (await web.get(f"/Appointment/{aid}", headers=auth("patient", "Patient/p1"))).json()
    assert stored["slot"] == [{"reference": "Slot/sl1"}] and stored["status"] == "booked"
    assert {"actor": {"reference": "Practitioner/dr1", "display": "Dr Ivanov"}, "status": "needs-action"} in \
        stored["participant"]
    moved = await web.post(f"/portal/appointments/{aid}/move", data={"csrf_token": csrf(page), "slot": "sl3"})
    assert moved.status_code == 303
    stored = (await web.get(f"/Appointment/{aid}", headers=auth("patient", "Patient/p1"))).json()
    assert stored["slot"] == [{"reference": "Slot/sl3"}] and stored["start"].startswith("2030-01-13")
    gone = await web.post("/portal/appointments/book", data={"csrf_token": csrf(page), "slot": "nope"})
    assert gone.status_code == 409 and "no longer free" in gone.text
    page = await web.get("/portal/appointments")
    cancelled = await web.post(f"/portal/appointments/{aid}/cancel", data={"csrf_token": csrf(page)})
    assert cancelled.status_code == 303
    stored = (await web.get(f"/Appointment/{aid}", headers=auth("patient", "Patient/p1"))).json()
    assert stored["status"] == "cancelled"
    assert (await web.get(f"/Appointment/{aid}", headers=doctor)).status_code == 404  # no consent: hidden
    await sign_in(web, "bolat")
    other = (await web.get("/portal/appointments")).text
    assert f"appointment-{aid}" not in other
