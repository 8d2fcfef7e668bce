"""The AuditEvent for a notification handed to a delivery channel (TM-13, architecture.md decision 7).

Sending a patient notification out of the server (to the e-government cabinet adapter, by e-mail)
is itself a transfer of health information, so each delivery — and each message given up as dead —
is recorded in the audit chain, in the same unit that settles the outbox rows.

Shape (R4 AuditEvent, modelled on DICOM "Export" as BALP has no push-notification event):

* ``type`` DICOM 110106 Export, ``action`` R, ``subtype`` ``notification-delivery`` from
  ``https://fhir.kzfhir.kz/CodeSystem/kz-audit-event-subtype``;
* agents: the server (DICOM 110153 Source Role ID, the requestor) and one information recipient
  (v3 ParticipationType IRCP) per channel, named by the channel and its endpoint host;
* entities: the notification (its outbox key, object-role 3 Report, with the message count and
  topic, and ``detail`` ``topic`` and, when the receiver acknowledged it (TM-13 receipt),
  ``acknowledgement``) and the patient (object-role 1), which files the event under the patient in the chain.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from fhir_server.security.audit import codes as c
from fhir_server.security.fhirtime import to_instant_text, utc_now
from fhir_server.security.refs import KZ_BASE

AUDIT_SUBTYPE_SYSTEM = f"{KZ_BASE}/CodeSystem/kz-audit-event-subtype"
DELIVERY = "notification-delivery"
OUTBOX_SYSTEM = "urn:kzfhir:outbox"


def is_delivery(event: dict[str, Any]) -> bool:
    return any(s.get("system") == AUDIT_SUBTYPE_SYSTEM and s.get("code") == DELIVERY
               for s in event.get("subtype", []) or [])


def _recipient(name: str, endpoint: str | None) -> dict[str, Any]:
    agent: dict[str, Any] = {
        "type": {"coding": [c.coding(c.PARTICIPATION_TYPE, "IRCP", "information recipient")]},
        "who": {"display": name},
        "requestor": False,
    }
    if endpoint:
        agent["network"] = {"address": endpoint, "type": "1"}  # machine name: never a URL with secrets
    return agent


def delivery_event(topic: str, key: str, partition: str | None, channels: Sequence[tuple[str, str | None]],
                   count: int, *, delivered: bool = True, error: str | None = None,
                   acknowledgement: str | None = None) -> dict[str, Any]:
    """One AuditEvent for one delivered (or dead) message or digest. ``channels`` are
    ``(name, endpoint host)`` pairs; ``partition`` is ``Patient/{id}`` for notifications."""
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(uuid.uuid4()),
        "type": c.coding(c.DICOM, "110106", "Export"),
        "subtype": [c.coding(AUDIT_SUBTYPE_SYSTEM, DELIVERY, "Patient notification delivery")],
        "action": "R",
        "recorded": to_instant_text(utc_now()),
        "outcome": c.SUCCESS if delivered else c.SERIOUS_FAILURE,
        "purposeOfEvent": [{"coding": [c.coding(c.ACT_REASON, "HOPERAT")]}],
        "agent": [
            {
                "type": {"coding": [c.coding(c.DICOM, "110153", "Source Role ID")]},
                "who": {"display": "kzfhir"},
                "requestor": True,
            },
            *(_recipient(name, endpoint) for name, endpoint in channels),
        ],
        "source": {"observer": {"display": "kzfhir"},
                   "type": [c.coding(c.SOURCE_TYPE, "4", "Application Server")]},
        "entity": [{
            "what": {"identifier": {"system": OUTBOX_SYSTEM, "value": key}},
            "type": c.coding(c.ENTITY_TYPE, "2", "System Object"),
            "role": c.coding(c.OBJECT_ROLE, "3", "Report"),
            "description": f"{topic}: {count} message(s)",
            "detail": [{"type": "topic", "valueString": topic}],
        }],
    }
    if acknowledgement:  # the receipt, documented with the transfer (TM-13)
        event["entity"][0]["detail"].append({"type": "acknowledgement", "valueString": acknowledgement})
    if not delivered:
        event["outcomeDesc"] = f"not delivered: {error or 'gave up'}"[:500]
    if partition and partition.startswith("Patient/"):
        event["entity"].append({
            "what": {"reference": partition},
            "type": c.coding(c.ENTITY_TYPE, "1", "Person"),
            "role": c.coding(c.OBJECT_ROLE, "1", "Patient"),
        })
    return event
