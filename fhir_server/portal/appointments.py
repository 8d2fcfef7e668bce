"""My appointments (TM-06, TM-09): book a free slot, move a booking to another free slot, cancel it.

Free slots are ``Slot?status=free`` from now on, read like any directory resource; the practitioner of a slot
is its Schedule's actor. A booking is an ``Appointment`` written by the patient (``PATIENT_WRITABLE``,
docs/security.md §2) naming the slot, its times and the participants; the server's rules for bookings apply
as for any client (the remote-booking consent check of TM-03/TM-07 when it is on, docs/consultation.md), and
the server books a Slot once (telemed/slots.py): it turns busy, a second booking is refused with 409 and the
API's reason in the page's language, and cancelling or moving the booking frees it. A slot that was taken
between showing the page and posting the form is answered 409 here already, as it is no longer free.
Moving keeps the Appointment and changes its slot and times; cancelling sets ``status = cancelled``."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from starlette.responses import Response

from fhir_server.portal.api import ApiError, entries
from fhir_server.portal.charts import concept_label
from fhir_server.portal.web import PREFIX, Page, Portal, fhir_id, first

LIVE = ("proposed", "pending", "booked", "arrived", "checked-in", "waitlist")


async def _free_slots(portal: Portal, page: Page) -> list[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    slots = entries(await portal.call(page, "GET", "/Slot", params={"status": "free", "start": f"ge{now}",
                                                                    "_count": "100"}))
    schedules: dict[str, Any] = {}
    refs = {str((s.get("schedule") or {}).get("reference", "")) for s in slots}
    found = await asyncio.gather(*(portal.call(page, "GET", f"/{ref}") for ref in refs if ref.startswith(
        "Schedule/")), return_exceptions=True)
    for ref, schedule in zip([r for r in refs if r.startswith("Schedule/")], found, strict=True):
        if isinstance(schedule, dict):
            schedules[ref] = schedule
    rows = []
    for slot in sorted(slots, key=lambda s: str(s.get("start", ""))):
        schedule = schedules.get(str((slot.get("schedule") or {}).get("reference", "")), {})
        who = [a for a in schedule.get("actor") or [] if str(a.get("reference", "")).startswith(
            ("Practitioner/", "PractitionerRole/"))]
        rows.append({"id": slot.get("id", ""), "start": str(slot.get("start", "")), "end": str(slot.get("end", "")),
                     "service": concept_label((slot.get("serviceType") or schedule.get("serviceType") or [{}])[0]),
                     "who": who[0] if who else None, "slot": slot})
    return rows


async def appointments(portal: Portal, page: Page, *, error: str = "", status: int = 200) -> Response:
    patient = page.me.patient
    mine = entries(await portal.call(page, "GET", "/Appointment", params={"patient": f"Patient/{patient}",
                                                                           "_count": "100"}))
    booked = {str(s.get("reference", "")) for a in mine if a.get("status") in LIVE for s in a.get("slot") or []}
    free = [s for s in await _free_slots(portal, page) if f"Slot/{s['id']}" not in booked]
    rows = [{"id": a.get("id", ""), "status": a.get("status", ""), "start": str(a.get("start", "")),
             "service": concept_label((a.get("serviceType") or [{}])[0]),
             "who": ", ".join(str((p.get("actor") or {}).get("display") or (p.get("actor") or {}).get("reference", ""))
                              for p in a.get("participant") or []
                              if not str((p.get("actor") or {}).get("reference", "")).startswith("Patient/")),
             "live": a.get("status") in LIVE} for a in sorted(mine, key=lambda a: str(a.get("start", "")))]
    return portal.render(page, "appointments.html", status=status, appointments=rows, free=free, error=error,
                         done=page.request.query_params.get("done", ""))


async def _slot(portal: Portal, page: Page, slot_id: str) -> dict[str, Any] | None:
    for row in await _free_slots(portal, page):
        if row["id"] == slot_id:
            return row
    return None


def _participants(patient: str, row: dict[str, Any]) -> list[dict[str, Any]]:
    people: list[dict[str, Any]] = [{"actor": {"reference": f"Patient/{patient}"}, "status": "accepted"}]
    if row["who"]:
        actor = {k: row["who"][k] for k in ("reference", "display") if row["who"].get(k)}
        people.append({"actor": actor, "status": "needs-action"})
    return people


async def book(portal: Portal, page: Page) -> Response:
    fields = await portal.form(page)
    patient = page.me.patient
    row = await _slot(portal, page, fhir_id(first(fields, "slot")))
    if row is None:
        return await appointments(portal, page, error=page.t("portal.slot_gone"), status=409)
    appointment: dict[str, Any] = {
        "resourceType": "Appointment", "status": "booked", "slot": [{"reference": f"Slot/{row['id']}"}],
        "start": row["start"], "end": row["end"], "participant": _participants(patient, row),
        "created": dt.date.today().isoformat()}
    if row["slot"].get("serviceType"):
        appointment["serviceType"] = row["slot"]["serviceType"]
    try:
        await portal.call(page, "POST", "/Appointment", body=appointment)
    except ApiError as refused:
        return await appointments(portal, page, error=refused.text, status=refused.status)
    return portal.redirect(f"{PREFIX}/appointments?done=booked")


async def move(portal: Portal, page: Page) -> Response:
    fields = await portal.form(page)
    aid = fhir_id(page.request.path_params["aid"])
    row = await _slot(portal, page, fhir_id(first(fields, "slot")))
    if row is None:
        return await appointments(portal, page, error=page.t("portal.slot_gone"), status=409)
    appointment = await portal.call(page, "GET", f"/Appointment/{aid}")
    appointment.update({"slot": [{"reference": f"Slot/{row['id']}"}], "start": row["start"], "end": row["end"]})
    try:
        await portal.call(page, "PUT", f"/Appointment/{aid}", body=appointment)
    except ApiError as refused:
        return await appointments(portal, page, error=refused.text, status=refused.status)
    return portal.redirect(f"{PREFIX}/appointments?done=moved")


async def cancel(portal: Portal, page: Page) -> Response:
    await portal.form(page)
    aid = fhir_id(page.request.path_params["aid"])
    appointment = await portal.call(page, "GET", f"/Appointment/{aid}")
    appointment["status"] = "cancelled"
    appointment["cancelationReason"] = {"text": "cancelled by the patient in the portal"}
    await portal.call(page, "PUT", f"/Appointment/{aid}", body=appointment)
    return portal.redirect(f"{PREFIX}/appointments?done=cancelled")
