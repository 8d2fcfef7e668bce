"""The policy enforcement point: what every interaction calls around its work (house style §5).

One :class:`AccessSession` per request holds the caller's context and the AuditEvents and patient
notifications the request produces. ``start`` gates the interaction, ``check`` each resource it
touches, ``visible`` filters result sets; ``record`` describes what happened. Writes put the
session's events into their own store unit (``write_into``), so audit and notification rows commit
atomically with the change (architecture.md decision 5); reads ``flush`` them in a unit of their
own, which the group commit batches with others (issue 5 §3 "for reads batched but durable").

With security switched off (``KZFHIR_SECURITY_ENABLED=false``, a development/test mode) every
check passes and nothing is recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, TypeVar

import orjson

from fhir_server.errors import FhirError
from fhir_server.security.audit.access_log import access_log_entry
from fhir_server.security.audit.balp import AuditTarget, denied_event, rest_events
from fhir_server.security.audit.notify import break_glass_notice
from fhir_server.security.audit.read_notices import NOTIFY_TOPIC
from fhir_server.security.context import RequestContext
from fhir_server.security.facts_store import FACT_TYPES, RequestFacts, SharedFacts
from fhir_server.security.policy import AccessPolicy, Action, Decision, PatientFacts, Verdict, patient_ids_of
from fhir_server.storage.protocols import Store, TxView

T = TypeVar("T")
AUTHORIZED = Verdict(Decision.AUTHORIZED, "security is switched off")
URGENT_TOPIC = "notification-urgent"  # break-glass notices: never held back for a digest (AC-02)


class Enforcer:
    """Process-wide: the policy, the shared facts cache, the store the audit goes to."""

    def __init__(self, store: Store, policy: AccessPolicy | None, facts: SharedFacts | None) -> None:
        self.store = store
        self.policy = policy
        self.facts = facts
        self._pending: list[tuple[list[dict[str, Any]], list[tuple[str, str, str, bytes]],
                                  asyncio.Future[None]]] = []
        self._drains: set[asyncio.Task[None]] = set()

    async def record_durably(self, events: list[dict[str, Any]], notices: list[tuple[str, str, str, bytes]]) -> None:
        """Commit audit events and notices of reads. Requests arriving together share one unit (one
        chain append, one statement batch); each caller resumes only once its records are committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((events, notices, future))
        if len(self._pending) == 1:
            task = loop.create_task(self._drain())
            self._drains.add(task)  # keep a reference until done: the loop holds tasks only weakly
            task.add_done_callback(self._drains.discard)
        await future

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # let the requests of this loop iteration join the batch
        batch, self._pending = self._pending, []
        events = [e for item in batch for e in item[0]]
        notices = [n for item in batch for n in item[1]]

        def unit(view: TxView) -> None:
            view.audit(events)
            for topic, patient, key, payload in notices:
                view.enqueue(topic, f"Patient/{patient}", key, payload)

        try:
            await self.store.transaction(unit, relaxed=True)
        except BaseException as exc:
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            raise
        for *_, future in batch:
            if not future.done():
                future.set_result(None)

    @property
    def enabled(self) -> bool:
        return self.policy is not None

    def session(self, ctx: RequestContext, pending: dict[str, PatientFacts] | None = None) -> AccessSession:
        return AccessSession(self, ctx, pending)

    def facts_changed(self, resource_type: str, view: TxView) -> None:
        """Call from a write unit: facts of patients may change once it commits."""
        if self.facts is not None and resource_type in FACT_TYPES:
            view.on_commit(self.facts.bump)


class AccessSession:
    def __init__(self, enforcer: Enforcer, ctx: RequestContext, pending: dict[str, PatientFacts] | None) -> None:
        self.enforcer = enforcer
        self.ctx = ctx
        self.policy = enforcer.policy
        self.facts = RequestFacts(enforcer.facts, pending) if enforcer.facts is not None else None
        self.events: list[dict[str, Any]] = []
        self.notices: list[tuple[str, str, str, bytes]] = []  # topic, patient, key, payload

    @property
    def enabled(self) -> bool:
        return self.policy is not None

    # -- decisions ---------------------------------------------------------------------------------
    async def start(self, action: Action, resource_type: str | None, target: AuditTarget, *,
                    operation: str | None = None, instance_level: bool = False) -> Verdict:
        """Type-level gate; a refusal is audited and raised as 403."""
        if self.policy is None:
            return AUTHORIZED
        verdict = self.policy.start(self.ctx, action, resource_type, operation=operation,
                                    instance_level=instance_level)
        if not verdict.allowed:
            await self.deny(target, verdict)
        return verdict

    async def decide(self, action: Action, resource: dict[str, Any]) -> tuple[Verdict, set[str]]:
        """Instance-level decision and the patients the resource belongs to (no side effects)."""
        if self.policy is None or self.facts is None:
            return AUTHORIZED, set()
        ids = patient_ids_of(resource)
        facts = await self.facts.get_many(ids)
        return self.policy.can_see(self.ctx, action, resource, facts, patient_ids=ids), ids

    async def check(self, action: Action, resource: dict[str, Any], target: AuditTarget) -> tuple[Verdict, set[str]]:
        """Instance-level gate for one resource; a refusal is audited and raised as 403."""
        verdict, ids = await self.decide(action, resource)
        if not verdict.allowed:
            await self.deny(target, verdict, ids)
        return verdict, ids

    async def keep_visible(self, action: Action, items: Iterable[tuple[T, dict[str, Any]]],
                           target: AuditTarget) -> list[T]:
        """The items (each with its resource) the caller may see, in order; the access is recorded once
        for the patients they belong to, with a break-glass verdict when one was used (so BTG is audited).
        For result sets: search pages and includes, history, $everything."""
        kept: list[T] = []
        patients: set[str] = set()
        verdicts: list[Verdict] = []
        for item, resource in items:
            verdict, ids = await self.decide(action, resource)
            if verdict.allowed:
                kept.append(item)
                patients |= ids
                verdicts.append(verdict)
        if verdicts:
            self.record(target, next((v for v in verdicts if v.emergency), verdicts[0]), patients)
        return kept

    async def deny(self, target: AuditTarget, verdict: Verdict, patient_ids: Iterable[str] = ()) -> None:
        """Audit the refusal durably, then raise 403 with the verdict's (safe) reason."""
        ids = sorted(set(patient_ids))
        if ids:
            self.events += [denied_event(self.ctx, _with_patient(target, pid), verdict.reason) for pid in ids]
        else:
            self.events.append(denied_event(self.ctx, target, verdict.reason))
        await self.flush()
        raise FhirError("forbidden", f"access denied: {verdict.reason}", code="forbidden")

    # -- recording ---------------------------------------------------------------------------------
    def record(self, target: AuditTarget, verdict: Verdict, patient_ids: Iterable[str]) -> None:
        """Describe a successful access: BALP AuditEvents (one per patient), and a notification to
        each patient whose data someone else used, changed or added (AC-18), urgent for break-glass."""
        if self.policy is None:
            return
        ids = set(patient_ids)
        events = rest_events(self.ctx, target, ids, verdict)
        self.events += events
        own = {self.ctx.fhir_user} if self.ctx.fhir_user else set()
        for event in events:
            patient = _patient_of(event)
            if patient is None or f"Patient/{patient}" in own:
                continue
            payload = {"patient": f"Patient/{patient}", **access_log_entry(event)}
            self.notices.append((NOTIFY_TOPIC, patient, str(event["id"]), orjson.dumps(payload)))
            if verdict.emergency:
                notice = break_glass_notice(self.ctx, patient, _what(target))
                self.notices.append((URGENT_TOPIC, patient, f"bg:{event['id']}", orjson.dumps(notice)))

    def write_into(self, view: TxView) -> None:
        """Inside a write unit: the recorded events and notices commit with the change."""
        if self.events:
            view.audit(self.events)
        for topic, patient, key, payload in self.notices:
            view.enqueue(topic, f"Patient/{patient}", key, payload)
        self.events, self.notices = [], []

    async def flush(self) -> None:
        """Commit what was recorded in a unit of its own (reads, refusals)."""
        if not self.events and not self.notices:
            return
        events, notices = self.events, self.notices
        self.events, self.notices = [], []
        await self.enforcer.record_durably(events, notices)


def _with_patient(target: AuditTarget, patient_id: str) -> AuditTarget:
    from dataclasses import replace

    return replace(target, patient_id=patient_id)


def _patient_of(event: dict[str, Any]) -> str | None:
    for entity in event.get("entity", []):
        what = (entity.get("what") or {}).get("reference", "")
        if (entity.get("role") or {}).get("code") == "1" and what.startswith("Patient/"):
            return str(what[len("Patient/"):])
    return None


def _what(target: AuditTarget) -> list[str]:
    if target.resource_type and target.resource_id:
        return [f"{target.resource_type}/{target.resource_id}"]
    return [target.resource_type] if target.resource_type else []
