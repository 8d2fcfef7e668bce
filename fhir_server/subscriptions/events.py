"""The one event source (issue 15 §3): where something that happened becomes a topic event.

* Writes: a change hook judges every stored version once against the topics' write triggers
  (topics.py ``TRIGGERS``: an appointment booked, moved or cancelled; a Consent given or revoked; a
  data-subject request received or its due date moved).
* The server's own events are raised with ``emit`` by the code that makes them: a critical reading
  recorded (jobs/monitoring.py, TM-26), a remote-service record queued for the NEHP
  (operations/nehp_submit.py, TM-11).

Each event goes to every listener, inside the write unit, so whatever they queue commits with the
change or not at all:

* the patient notices: TM-09 appointment notices to the participants (jobs/appointment_notices.py) and
  the TM-26 urgent notices of a critical reading (jobs/monitoring.py), on the patient-notification
  outbox topics, delivered by the patient channels (docs/notifications.md) as before;
* the subscriptions (matching.py), matched against every Subscription at the end of the write unit.

The listeners are given at installation (service.py ``install``), not imported here, so the producers
can import ``emit`` without a cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from fhir_server.storage.protocols import StoredResource, TxView
from fhir_server.subscriptions.topics import TRIGGERS, Event, topics

Listener = Callable[[TxView, Any, Event, StoredResource], None]
_TRIGGERED = frozenset(t for url in TRIGGERS for t in topics()[url].resources)


class EventSource:
    """Installed in ``Services.change_hooks`` (service.py)."""

    def __init__(self, listeners: list[Listener] | None = None) -> None:
        self.listeners: list[Listener] = list(listeners or [])
        self.flushers: list[Callable[[TxView], None]] = []

    def __call__(self, view: TxView, services: Any, previous: bytes | None, resource: dict[str, Any],
                 stored: StoredResource) -> None:
        if resource.get("resourceType") not in _TRIGGERED:
            return
        before = orjson.loads(previous) if previous else None
        for trigger in TRIGGERS.values():
            event = trigger(before, resource)
            if event is not None:
                self.emit(view, services, event, stored)

    def emit(self, view: TxView, services: Any, event: Event, stored: StoredResource) -> None:
        for listener in self.listeners:
            listener(view, services, event, stored)


def source_of(services: Any) -> EventSource | None:
    for hook in services.change_hooks:
        if isinstance(hook, EventSource):
            return hook
    return None


def emit(view: TxView, services: Any, event: Event, stored: StoredResource, *, in_write_unit: bool = True) -> None:
    """Raise one of the server's own events. Inside a write unit of the executor the subscriptions match
    it at the unit's end with the rest; elsewhere (an operation's own unit, ``in_write_unit=False``)
    they match it at once."""
    source = source_of(services)
    if source is None:
        raise RuntimeError("no event source installed (subscriptions/service.py install)")
    source.emit(view, services, event, stored)
    if not in_write_unit:
        for flush in source.flushers:
            flush(view)
