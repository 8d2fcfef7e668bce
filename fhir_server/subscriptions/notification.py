"""Notification Bundles in the R4 form of the Subscriptions Backport IG 1.1.0.

A notification is a Bundle of type ``history`` (profile ``backport-subscription-notification-r4``)
whose first entry is the SubscriptionStatus as a ``Parameters`` resource (profile
``backport-subscription-status-r4``), with ``request`` and ``response`` as for a ``$status`` call
(bdl-3/bdl-4 of a history Bundle); then one entry per focus the payload carries: the resource itself
(``full-resource``) or its full URL only (``id-only``); ``empty`` carries none.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
STATUS_PROFILE = f"{BACKPORT}/backport-subscription-status-r4"
NOTIFICATION_PROFILE = f"{BACKPORT}/backport-subscription-notification-r4"


@dataclass(slots=True)
class NotificationEvent:
    number: int
    timestamp: str
    focus: str | None = None  # Type/id (shown as a full URL), None when not disclosed
    context: list[str] = field(default_factory=list)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def status_parameters(base: str, subscription_id: str, topic: str, status: str, kind: str, events_since: int,
                      events: list[NotificationEvent], error: str | None = None) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": "subscription", "valueReference": {"reference": f"{base}/Subscription/{subscription_id}"}},
        *([{"name": "topic", "valueCanonical": topic}] if topic else []),  # none for a classic criteria
        {"name": "status", "valueCode": status},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(events_since)},
    ]
    for event in events:
        parts: list[dict[str, Any]] = [{"name": "event-number", "valueString": str(event.number)},
                                       {"name": "timestamp", "valueInstant": event.timestamp}]
        if event.focus is not None:
            parts.append({"name": "focus", "valueReference": {"reference": f"{base}/{event.focus}"}})
        parts += [{"name": "additional-context", "valueReference": {"reference": f"{base}/{ref}"}}
                  for ref in event.context]
        params.append({"name": "notification-event", "part": parts})
    if error:
        params.append({"name": "error", "valueCodeableConcept": {"text": error}})
    return {"resourceType": "Parameters", "id": str(uuid.uuid4()), "meta": {"profile": [STATUS_PROFILE]},
            "parameter": params}


def resource_entry(base: str, resource: dict[str, Any] | None, ref: str, version: int) -> dict[str, Any]:
    """A focus or context entry: the resource (full-resource) or its full URL only (id-only)."""
    rtype, _, rid = ref.partition("/")
    entry: dict[str, Any] = {"fullUrl": f"{base}/{rtype}/{rid}"}
    if resource is not None:
        entry["resource"] = resource
    created = version == 1
    entry["request"] = {"method": "POST" if created else "PUT", "url": rtype if created else f"{rtype}/{rid}"}
    entry["response"] = {"status": "201" if created else "200"}
    return entry


def bundle(base: str, subscription_id: str, parameters: dict[str, Any], entries: list[dict[str, Any]]
           ) -> dict[str, Any]:
    status_entry = {"fullUrl": f"urn:uuid:{parameters['id']}", "resource": parameters,
                    "request": {"method": "GET", "url": f"{base}/Subscription/{subscription_id}/$status"},
                    "response": {"status": "200"}}
    return {"resourceType": "Bundle", "id": str(uuid.uuid4()), "meta": {"profile": [NOTIFICATION_PROFILE]},
            "type": "history", "timestamp": now(), "entry": [status_entry, *entries]}
