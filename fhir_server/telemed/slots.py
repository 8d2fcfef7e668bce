"""A Slot is booked once (TM-05/TM-06/TM-09): booking it makes it busy, a second booking is a conflict (409),
cancelling or moving the booking frees it again.

One rule for every path to a booking — a plain ``POST``/``PUT``/``PATCH`` of an Appointment, a Bundle entry,
a conditional form, the portal's pages — because it runs where each stored version of an Appointment passes:
a change hook inside the write unit (``Services.change_hooks``, interactions/write.py). The check and the
Slot's new status commit with the booking or not at all, and they read the unit's own writes, so two entries
of one transaction booking the same Slot conflict as two requests do. Write units never run side by side
(SQLite has one writer; PostgreSQL units hold ``store_head`` locked on every node, storage/postgres/txview.py),
so of two bookings sent at the same moment the second one finds the Slot busy.

- An Appointment *holds* its slots while its status is one of :data:`HOLDING`; a cancelled, no-show,
  waitlisted or entered-in-error one holds none.
- A slot an Appointment starts to hold must be ``free``; ``busy``/``busy-tentative`` is accepted only when no
  other holding Appointment names it (data imported with its bookings, the Slot already marked busy), and
  ``busy-unavailable``/``entered-in-error`` never. The Slot is then stored ``busy``.
- A slot it stops holding (cancelled, moved to another slot, deleted) is stored ``free`` again, unless another
  holding Appointment still names it.
- A Slot itself written back to ``free`` while a holding Appointment names it is a conflict too.
- A Slot that is not stored (an Appointment naming a slot of another system, or imported before its Slot) is
  not checked: there is nothing to mark.
"""

from __future__ import annotations

from typing import Any

import orjson

from fhir_server.errors import FhirError
from fhir_server.i18n import msg
from fhir_server.search.in_unit import find_in_unit
from fhir_server.storage.protocols import StoredResource, TxView

#: the statuses in which an Appointment keeps its slots (R4 appointmentstatus)
HOLDING = frozenset({"proposed", "pending", "booked", "arrived", "fulfilled", "checked-in"})
#: a Slot with one of these statuses is never booked
CLOSED = frozenset({"busy-unavailable", "entered-in-error"})


def held(appointment: dict[str, Any] | None) -> set[str]:
    """The Slot ids an Appointment version holds (``Slot/x`` references, in a holding status)."""
    status, slots = (appointment or {}).get("status"), (appointment or {}).get("slot")
    if not isinstance(status, str) or status not in HOLDING or not isinstance(slots, list):
        return set()  # (a malformed one is the validator's to refuse: this rule never fails on it)
    out = set()
    for slot in slots:
        ref = slot.get("reference") if isinstance(slot, dict) else None
        if isinstance(ref, str) and ref.startswith("Slot/") and "/" not in ref[5:]:
            out.add(ref[5:])
    return out


def _holders(view: TxView, slot_id: str, other_than: str | None) -> list[str]:
    """The ids of holding Appointments (current versions, the unit's writes included) naming the Slot."""
    found = find_in_unit(view, "Appointment", [("slot", f"Slot/{slot_id}")], 100)
    return [str(a.get("id")) for a in found if a.get("id") != other_than and slot_id in held(a)]


def _current(view: TxView, slot_id: str) -> dict[str, Any] | None:
    stored = view.current("Slot", slot_id)
    if stored is None or stored.deleted or stored.data is None:
        return None
    slot: dict[str, Any] = orjson.loads(stored.data)
    return slot


def _freed(previous: bytes | None, slot: dict[str, Any]) -> bool:
    """Whether this Slot version makes free a slot that was not (a new Slot is checked by no one's booking)."""
    return slot.get("status") == "free" and previous is not None and orjson.loads(previous).get("status") != "free"


def _set_status(view: TxView, services: Any, slot: dict[str, Any], status: str) -> None:
    from fhir_server.interactions.write import store_version  # write.py runs the hooks: imported when used

    stored = view.current("Slot", str(slot["id"]))
    version = 1 if stored is None else stored.version + 1
    changed = {k: v for k, v in slot.items() if k != "meta"} | {"status": status}
    store_version(view, services, changed, "Slot", str(slot["id"]), version, "PUT")


class SlotBooking:
    """The change hook (each stored version), and a unit hook for deletions (which store no version)."""

    def __call__(self, view: TxView, services: Any, previous: bytes | None, resource: dict[str, Any],
                 stored: StoredResource) -> None:
        rtype = resource.get("resourceType")
        if rtype == "Appointment":
            before = orjson.loads(previous) if previous else None
            self.rebook(view, services, str(resource.get("id")), held(before), held(resource))
        elif rtype == "Slot" and _freed(previous, resource) and _holders(view, str(resource.get("id")), None):
            raise FhirError("conflict", msg("booking.slot_held", slot=f"Slot/{resource.get('id')}"),
                            code="conflict", expression="Slot.status")

    def rebook(self, view: TxView, services: Any, appointment_id: str, before: set[str], after: set[str]) -> None:
        for slot_id in sorted(after - before):
            slot = _current(view, slot_id)
            if slot is None:
                continue
            status = str(slot.get("status"))
            taken = status in CLOSED or (status != "free" and bool(_holders(view, slot_id, appointment_id)))
            if taken:
                raise FhirError("conflict", msg("booking.slot_taken", slot=f"Slot/{slot_id}"), code="conflict",
                                expression="Appointment.slot")
            if status != "busy":
                _set_status(view, services, slot, "busy")
        for slot_id in sorted(before - after):
            slot = _current(view, slot_id)
            if slot is not None and slot.get("status") == "busy" and not _holders(view, slot_id, appointment_id):
                _set_status(view, services, slot, "free")

    # -- a deleted Appointment frees its slots (the executor calls these around a unit's writes) -------------
    def unit_begin(self, view: TxView, req: Any, ops: list[Any]) -> None:
        return None

    def unit_end(self, view: TxView, req: Any, ops: list[Any]) -> None:
        for op in ops:
            if op.method != "DELETE" or op.resource_type != "Appointment":
                continue
            for gone in op.deleted:
                last = view.version("Appointment", gone.id, gone.version - 1)
                if last is not None and last.data is not None:
                    self.rebook(view, req.services, gone.id, held(orjson.loads(last.data)), set())
