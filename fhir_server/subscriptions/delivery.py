"""The delivery of subscription messages, rest-hook and websocket (websocket.py): the outbox worker's
channel for topic ``subscription`` (jobs/worker.py retries it with exponential backoff and gives up after its maximum
number of attempts; each hand-over is audited there, TM-13).

Each message is built when it is delivered:

* ``handshake`` — a notification of type ``handshake``; its success makes the Subscription ``active``;
* ``heartbeat`` — type ``heartbeat``, the current event count;
* ``event`` — type ``event-notification`` for one event. The focus (and context) is judged again now,
  under the owner's identity with the current facts (security/session.py ``decide``), so a Consent
  revoked after the event stops its content at once: a focus the owner may no longer read is left out
  (the notification still tells the event number, with no focus). What is sent is audited as the
  owner's read of it (a BALP read AuditEvent per patient, and the patient's AC-18 notice).

A Subscription that is ``off`` or deleted gets nothing more: its queued messages are dropped. A failed
POST (network error or a status ≥ 300) sets the Subscription to ``error`` and raises for a retry; the
next success sets it ``active`` again.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import orjson

from fhir_server.jobs.channels import DeliveryError
from fhir_server.security.audit.balp import AuditTarget
from fhir_server.security.policy import Action
from fhir_server.security.session import AccessSession
from fhir_server.storage.protocols import StoredResource
from fhir_server.subscriptions.http import HookClient, HookError
from fhir_server.subscriptions.notification import NotificationEvent, bundle, resource_entry, status_parameters
from fhir_server.subscriptions.registry import Entry, Registry, job_id
from fhir_server.subscriptions.spec import read_spec
from fhir_server.subscriptions.status import set_status
from fhir_server.subscriptions.websocket import Sockets

MEDIA = "application/fhir+json"


@dataclass(slots=True)
class _Disclosed:
    ref: str
    version: int
    resource: dict[str, Any]
    judged: Any


class SubscriptionChannel:
    name = "subscription"
    endpoint: str | None = None

    def __init__(self, services: Any, registry: Registry, sockets: Sockets | None = None) -> None:
        self.services = services
        self.registry = registry
        self.sockets = sockets if sockets is not None else Sockets()
        self._http_client: HookClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _client(self) -> HookClient:
        """One client for every rest-hook notification, its connections kept alive (http.py: a client
        per notification, and then httpx's pool, each cost more CPU than the rest of the notification)."""
        loop = asyncio.get_running_loop()
        if self._http_client is None or self._loop is not loop:
            self._http_client = HookClient()
            self._loop = loop  # a client's connections belong to the loop that opened them
        return self._http_client

    async def close(self) -> None:
        if self._http_client is not None:
            await self._http_client.aclose()
            self._http_client = None

    async def deliver(self, topic: str, key: str, payload: dict[str, Any]) -> None:
        sid = str(payload.get("subscription"))
        kind = str(payload.get("kind"))
        # the Subscription and the event's resources read side by side: one wait for the readers, not three
        wanted = [str(payload["focus"]), *map(str, payload.get("context", []))] if kind == "event" else []
        stored, *read = await asyncio.gather(self.services.store.read("Subscription", sid),
                                             *(self._vread(ref) for ref in wanted))
        found = dict(zip(wanted, read, strict=True))
        if stored is None or stored.deleted or stored.data is None or \
                orjson.loads(stored.data).get("status") == "off":
            return  # deleted or switched off: nothing more is sent (the message counts as handled)
        entry = await self._entry(sid, stored.version)
        session = self._session(entry)
        disclosed: list[_Disclosed] = []
        if entry.spec.classic is not None:
            sent = await self._classic(entry, key, kind, payload, session, disclosed, found)
        else:
            if kind == "event":
                body = await self._event(entry, payload, session, disclosed, found)
            else:
                status = "active" if kind == "handshake" else entry.status
                params = status_parameters(entry.base_url, sid, entry.spec.topic, status, kind,
                                           await self._events(entry), [])
                body = bundle(entry.base_url, sid, params, [])
            sent = await self._send(entry, key, kind, orjson.dumps(body))
        if not sent:
            return
        self.registry.last_sent[sid] = time.monotonic()
        if kind == "handshake" or entry.status == "error":
            await set_status(self.services, self.registry, sid, "active")
        if session is not None and disclosed:
            for item in disclosed:
                rtype, _, rid = item.ref.partition("/")
                target = AuditTarget("read", rtype, rid, str(item.version), query=f"Subscription/{sid} notification")
                session.record(target, item.judged.verdict, item.judged.patients)
            await session.flush()

    async def _send(self, entry: Entry, key: str, kind: str, body: bytes) -> bool:
        """Hand a notification to the channel; False when a websocket subscription has no socket bound
        and the message is not an event (a heartbeat for nobody is dropped)."""
        if entry.spec.channel == "websocket":
            if await self.sockets.send(entry.id, body.decode()):
                return True
            if kind == "event":  # retried with back-off (jobs/worker.py); $events has it meanwhile
                raise DeliveryError(f"subscription {entry.id}: no websocket is bound")
            return False
        await self._http(entry, key, "POST", entry.spec.endpoint, body)
        return True

    async def _classic(self, entry: Entry, key: str, kind: str, payload: dict[str, Any],
                       session: AccessSession | None, disclosed: list[_Disclosed],
                       found: dict[str, StoredResource | None]) -> bool:
        """A classic R4 notification (R4 subscription.html, channels): over a websocket ``ping [id]``;
        a rest-hook without payload is a POST with no body, with a payload an update (PUT) of the
        resource to ``[endpoint]/[type]/[id]`` — if the owner may still read it now, else the empty POST."""
        if kind != "event":
            return False  # R4 knows no handshake or heartbeat for classic subscriptions
        if entry.spec.channel == "websocket":
            return await self._send(entry, key, kind, f"ping {entry.id}".encode())
        if entry.spec.content == "full-resource":
            focus = await self._visible(session, found[str(payload["focus"])])
            if focus is not None:
                rtype, _, rid = focus.ref.partition("/")
                url = f"{entry.spec.endpoint.rstrip('/')}/{rtype}/{rid}"
                await self._http(entry, key, "PUT", url, orjson.dumps(focus.resource))
                if focus.judged is not None:
                    disclosed.append(focus)
                return True
        await self._http(entry, key, "POST", entry.spec.endpoint, None)
        return True

    async def _entry(self, sid: str, version: int) -> Entry:
        """The registry's entry for the stored version. The worker may see a unit's outbox row a moment
        before the unit's commit callbacks updated the registry, or the Subscription may have been
        written on another node (its change reaches this one's registry asynchronously): then the entry
        is read from the store, which has it committed."""
        entry = self.registry.get(sid)
        if entry is None or entry.version < version:
            entry = await self.registry.fetch(self.services.store, read_spec, sid)
        if entry is None or entry.version < version:
            raise DeliveryError(f"subscription {sid}: version {version} is not registered yet")
        return entry

    async def _events(self, entry: Entry) -> int:
        """``eventsSinceSubscriptionStart`` as the database holds it (other nodes number events too)."""
        job = await self.services.store.get_job(job_id(entry.id))
        return max(entry.events, int(orjson.loads(job[3]).get("events") or 0) if job else 0)

    def _session(self, entry: Entry) -> AccessSession | None:
        enforcer = self.services.enforcer
        if enforcer is None or not enforcer.enabled:
            return None
        session: AccessSession = enforcer.session(entry.owner.context())
        return session

    async def _vread(self, versioned: str) -> StoredResource | None:
        ref, _, version = versioned.partition("/_history/")
        rtype, _, rid = ref.partition("/")
        stored: StoredResource | None = await self.services.store.vread(rtype, rid, int(version))
        return stored

    async def _visible(self, session: AccessSession | None, stored: StoredResource | None) -> _Disclosed | None:
        """``stored`` (an event's focus or context as it was) if the owner may read it now."""
        if stored is None or stored.deleted or stored.data is None:
            return None
        ref = f"{stored.type}/{stored.id}"
        resource = orjson.loads(stored.data)
        if session is None:
            return _Disclosed(ref, stored.version, resource, None)
        judged = await session.decide_stored(Action.READ, stored)
        return _Disclosed(ref, stored.version, resource, judged) if judged.allowed else None

    async def _event(self, entry: Entry, payload: dict[str, Any], session: AccessSession | None,
                     disclosed: list[_Disclosed], found: dict[str, StoredResource | None]) -> dict[str, Any]:
        number = int(payload["event"])
        event = NotificationEvent(number, str(payload["timestamp"]))
        entries: list[dict[str, Any]] = []
        content = entry.spec.content
        if content != "empty":
            focus = await self._visible(session, found[str(payload["focus"])])
            if focus is not None:
                event.focus = focus.ref
                context = [c for c in [await self._visible(session, found[str(ref)])
                                       for ref in payload.get("context", [])] if c is not None]
                event.context = [c.ref for c in context]
                for item in [focus, *context]:
                    full = item.resource if content == "full-resource" else None
                    entries.append(resource_entry(entry.base_url, full, item.ref, item.version))
                    if item.judged is not None:
                        disclosed.append(item)
        params = status_parameters(entry.base_url, entry.id, entry.spec.topic, entry.status, "event-notification",
                                   number, [event])
        return bundle(entry.base_url, entry.id, params, entries)

    async def _http(self, entry: Entry, key: str, method: str, url: str, body: bytes | None) -> None:
        headers = {"idempotency-key": key}
        if body is not None:
            headers["content-type"] = MEDIA
        headers.update({name: value for name, value in entry.spec.headers})
        error: str | None = None
        try:
            status = await self._client().request(method, url, body or b"", headers, entry.spec.timeout)
            if status >= 300:
                error = f"the endpoint answered {status}"
        except HookError as exc:
            error = f"the endpoint could not be reached ({exc.kind})"
        if error is not None:
            await set_status(self.services, self.registry, entry.id, "error", f"delivery failed: {error}")
            raise DeliveryError(f"subscription {entry.id}: {error}")
