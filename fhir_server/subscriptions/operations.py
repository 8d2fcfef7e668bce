"""``Subscription/[id]/$status``, ``$events`` and ``$get-ws-binding-token`` (Subscriptions Backport IG 1.1.0).

Both read the Subscription through the caller's access session first, so only its owner and an
administrator get past it (security/policy/owned.py); anyone else gets the 404 of an unknown id.

* ``$status``: a ``searchset`` Bundle with the SubscriptionStatus (``Parameters``, type
  ``query-status``): status, topic, ``events-since-subscription-start``, and the error if any.
* ``$events``: the notification Bundle (type ``history``, status type ``query-event``) of the events
  numbered ``eventsSinceNumber`` .. ``eventsUntilNumber`` (default: the last 100), kept in the outbox.
  ``content`` (``empty`` | ``id-only`` | ``full-resource``, default the subscription's) says what each
  event carries; every focus is judged under the **caller** (session ``vread``: judged and audited), so
  what the caller may not read is listed by event number without its focus.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from fhir_server.errors import FhirError
from fhir_server.interactions.base import FhirResponse
from fhir_server.jsonio import dumps
from fhir_server.operations.patient_ops import int_param, reject_unknown
from fhir_server.operations.registry import OperationCall, operation
from fhir_server.security.policy.owned import owner_key, owner_of
from fhir_server.security.roles import ADMIN
from fhir_server.subscriptions.matching import OUTBOX_TOPIC, partition
from fhir_server.subscriptions.notification import (
    NotificationEvent,
    bundle,
    now,
    resource_entry,
    status_parameters,
)
from fhir_server.subscriptions.registry import Entry
from fhir_server.subscriptions.service import installed
from fhir_server.subscriptions.spec import CONTENTS, read_spec
from fhir_server.subscriptions.websocket import MAX_PER_TOKEN, TooManyTokens, websocket_url

STATUS_LIMIT = 1000  # type-level $status reports at most this many subscriptions
EVENTS_KEPT = 1000  # $events looks at most this many of the newest messages of a subscription
DEFAULT_EVENTS = 100


async def _entry(call: OperationCall, sid: str | None = None) -> tuple[Entry, dict[str, Any]]:
    sid = sid if sid is not None else call.resource_id or ""
    stored = await call.access.read("Subscription", sid)  # judged: the owner or an administrator, else 404
    subscriptions = installed(call.services)
    if subscriptions is None:
        raise FhirError("not_found", f"Subscription/{sid} is not served (not a topic-based subscription)")
    # the database's record, not this process's memory: another node may have created the Subscription
    # or numbered its events a moment ago (several processes on one PostgreSQL database)
    entry = await subscriptions.registry.fetch(call.services.store, read_spec, sid)
    if entry is None:
        raise FhirError("not_found", f"Subscription/{sid} is not served (not a topic-based subscription)")
    return entry, orjson.loads(stored.data or b"{}")


def _error(resource: dict[str, Any]) -> str | None:
    error = resource.get("error")
    return str(error) if isinstance(error, str) else None


@operation("status", levels=("instance", "type"), types=("Subscription",))
async def status_operation(call: OperationCall) -> FhirResponse:
    """One SubscriptionStatus (instance level), or one per subscription (type level): those named by
    ``id``, else every subscription the caller owns (an administrator: every one), at most
    ``STATUS_LIMIT``. Each is read through the caller's session first (owner or administrator, else 404)."""
    if call.resource_id is not None:
        reject_unknown(call, frozenset())
        sids = [call.resource_id]
    else:
        reject_unknown(call, frozenset({"id"}))
        named = [str(v) for v in call.params().get("id", [])]
        if len(named) > STATUS_LIMIT:
            raise FhirError("invalid", f"at most {STATUS_LIMIT} ids", code="too-costly", expression="id")
        subscriptions = installed(call.services)
        caller, admin = owner_key(call.ctx), call.ctx.role == ADMIN
        sids = named or sorted(e.id for e in (subscriptions.registry.all() if subscriptions else [])
                               if admin or e.owner.key == caller)[:STATUS_LIMIT]
    entries = []
    for sid in dict.fromkeys(sids):
        entry, resource = await _entry(call, sid)
        base = call.base_url or entry.base_url
        params = status_parameters(base, entry.id, entry.spec.topic, str(resource.get("status")), "query-status",
                                   entry.events, [], _error(resource))
        entries.append({"fullUrl": f"urn:uuid:{params['id']}", "resource": params, "search": {"mode": "match"}})
    result = {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "searchset", "timestamp": now(),
              "total": len(entries), "entry": entries}
    return FhirResponse(200, dumps(result, pretty=call.pretty))


@operation("events", levels=("instance",), types=("Subscription",))
async def events_operation(call: OperationCall) -> FhirResponse:
    reject_unknown(call, frozenset({"eventsSinceNumber", "eventsUntilNumber", "content"}))
    entry, resource = await _entry(call)
    until = int_param(call, "eventsUntilNumber", entry.events, low=1, high=2**62) or entry.events
    since = int_param(call, "eventsSinceNumber", max(1, until - DEFAULT_EVENTS + 1), low=1, high=2**62) or 1
    content = call.one("content") or entry.spec.content
    if content not in CONTENTS:
        raise FhirError("invalid", f"content must be one of {', '.join(CONTENTS)}", code="value",
                        expression="content")
    base = call.base_url or entry.base_url
    items = await call.access.records.outbox_partition(OUTBOX_TOPIC, partition(entry.id), EVENTS_KEPT)
    messages = sorted((m for m in (orjson.loads(i.payload) for i in items)
                       if m.get("kind") == "event" and since <= int(m.get("event", 0)) <= until),
                      key=lambda m: int(m["event"]))
    events: list[NotificationEvent] = []
    entries: list[dict[str, Any]] = []
    for message in messages:
        event = NotificationEvent(int(message["event"]), str(message["timestamp"]))
        if content != "empty":
            for i, ref in enumerate([message["focus"], *message.get("context", [])]):
                shown = await _visible(call, str(ref))
                if shown is None:
                    if i == 0:
                        break  # the focus is hidden: the event is listed without it, and without context
                    continue
                rref, version, data = shown
                if i == 0:
                    event.focus = rref
                else:
                    event.context.append(rref)
                entries.append(resource_entry(base, data if content == "full-resource" else None, rref, version))
        events.append(event)
    params = status_parameters(base, entry.id, entry.spec.topic, str(resource.get("status")), "query-event",
                               entry.events, events, _error(resource))
    return FhirResponse(200, dumps(bundle(base, entry.id, params, entries), pretty=call.pretty))


async def _visible(call: OperationCall, versioned: str) -> tuple[str, int, dict[str, Any]] | None:
    ref, _, version = versioned.partition("/_history/")
    rtype, _, rid = ref.partition("/")
    try:
        stored = await call.access.vread(rtype, rid, int(version))
    except FhirError:
        return None  # unknown, deleted or hidden from the caller: not shown
    data: dict[str, Any] = orjson.loads(stored.data or b"{}")
    return ref, stored.version, data


@operation("get-ws-binding-token", levels=("instance", "type"), types=("Subscription",))
async def ws_binding_token_operation(call: OperationCall) -> FhirResponse:
    """``$get-ws-binding-token`` (Backport IG 1.1.0): a short-lived, single-use token binding a websocket
    to the caller's own websocket subscriptions (websocket.py). Only the **owner** gets one, not an
    administrator: what the socket then carries is judged under the owner's identity. At type level the
    subscriptions are named by ``id`` (at least one: this server does not bind "all of them")."""
    if call.method != "POST":
        raise FhirError("method_not_allowed", "$get-ws-binding-token issues a token: use POST")
    reject_unknown(call, frozenset({"id"}))
    if call.resource_id is not None:
        ids = [call.resource_id]  # the IG: at instance level the id parameter is ignored
    else:
        ids = [str(v) for v in call.params().get("id", [])]
        if not ids:
            raise FhirError("invalid", "name the subscriptions with the id parameter", code="required",
                            expression="id")
        if len(ids) > MAX_PER_TOKEN:
            raise FhirError("invalid", f"a token binds at most {MAX_PER_TOKEN} subscriptions", code="too-costly",
                            expression="id")
    subscriptions = installed(call.services)
    if subscriptions is None:
        raise FhirError("not_found", "subscriptions are not served", code="not-supported")
    caller = owner_key(call.ctx)
    for i, sid in enumerate(dict.fromkeys(ids)):
        entry, resource = await _entry(call, sid)
        where = f"id[{i}]" if call.resource_id is None else "Subscription.channel.type"
        if owner_of(resource) != caller:
            raise FhirError("forbidden", f"only the owner of Subscription/{sid} may bind to it", code="security")
        if entry.spec.channel != "websocket":
            raise FhirError("unprocessable", f"Subscription/{sid} is not a websocket subscription",
                            code="business-rule", expression=where)
        if resource.get("status") == "off":
            raise FhirError("unprocessable", f"Subscription/{sid} is off", code="business-rule", expression=where)
    unique = list(dict.fromkeys(ids))
    try:
        token, expires = subscriptions.tokens.issue(unique, caller)
    except TooManyTokens as exc:
        raise FhirError("too_many_requests", "too many binding tokens are waiting to be used: try again in a "
                        "minute", code="throttled") from exc
    expiration = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "token", "valueString": token},
        {"name": "expiration", "valueDateTime": expiration},
        *({"name": "subscription", "valueString": sid} for sid in unique),
        {"name": "websocket-url", "valueUrl": websocket_url(call.base_url)}]}
    return FhirResponse(200, dumps(params, pretty=call.pretty), headers={"Cache-Control": "no-store"})
