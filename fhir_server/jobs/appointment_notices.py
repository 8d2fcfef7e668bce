"""Notices of booked, rescheduled and cancelled appointments to their participants (TM-09).

A listener of the one event source (subscriptions/events.py), for topic ``appointment``: when an
Appointment is written and its status or time changed (``_event``, the topic's trigger), each
participant that is a Patient, Practitioner or RelatedPerson gets a Communication in the durable outbox
(topic ``notification``, partition = the participant), in the same unit as the change. The outbox worker
delivers them with the patient notifications (webhook, e-mail); patients see them in
``Patient/[id]/$notifications``.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from fhir_server.i18n import Message, msg
from fhir_server.i18n.notices import payload
from fhir_server.security.audit.read_notices import NOTIFY_TOPIC
from fhir_server.storage.protocols import StoredResource, TxView

CATEGORY = "http://terminology.hl7.org/CodeSystem/communication-category"
_RECIPIENTS = ("Patient/", "Practitioner/", "RelatedPerson/")
_TEXT = {"booked": "notice.appointment_booked", "rescheduled": "notice.appointment_moved",
         "cancelled": "notice.appointment_cancelled"}  # catalogue keys (fhir_server/i18n/messages)


def _event(previous: dict[str, Any] | None, current: dict[str, Any]) -> str | None:
    status = current.get("status")
    if status == "cancelled":
        return None if previous is not None and previous.get("status") == "cancelled" else "cancelled"
    if status not in ("booked", "arrived", "checked-in"):
        return None
    if previous is None or previous.get("status") not in ("booked", "arrived", "checked-in"):
        return "booked"
    moved = (previous.get("start"), previous.get("end")) != (current.get("start"), current.get("end"))
    return "rescheduled" if moved else None


def _what(appointment: dict[str, Any]) -> str | Message:
    for concept in appointment.get("serviceType", []) or []:
        for coding in concept.get("coding", []) or []:
            if coding.get("display"):
                return str(coding["display"])
        if concept.get("text"):
            return str(concept["text"])
    description = appointment.get("description")
    return str(description) if description else msg("notice.consultation")


def notice(event: str, appointment: dict[str, Any], recipient: str) -> dict[str, Any]:
    when = str(appointment["start"]) if appointment.get("start") else msg("notice.time_to_be_confirmed")
    text = msg(_TEXT[event], what=_what(appointment), when=when)
    return {
        "resourceType": "Communication", "id": str(uuid.uuid4()), "status": "preparation",
        "category": [{"coding": [{"system": CATEGORY, "code": "reminder" if event == "booked" else "notification"}]}],
        "priority": "routine", "recipient": [{"reference": recipient}],
        "about": [{"reference": f"Appointment/{appointment['id']}"}],
        "payload": payload(text),
    }


def notify_participants(view: TxView, resource: dict[str, Any], stored: StoredResource, event: str) -> None:
    """Queue the notice of ``event`` (booked, rescheduled, cancelled) for every participant."""
    recipients = sorted({p["actor"]["reference"] for p in resource.get("participant", []) or []
                         if isinstance((p.get("actor") or {}).get("reference"), str)
                         and p["actor"]["reference"].startswith(_RECIPIENTS) and p.get("status") != "declined"})
    for recipient in recipients:
        key = f"appointment:{stored.id}:{stored.version}:{recipient}"
        view.enqueue(NOTIFY_TOPIC, recipient, key, orjson.dumps(notice(event, resource, recipient)))
