"""The access session: the one enforced path between a request and the data (issue 10; AC-01, AC-12, AC-14).

Every interaction — each Bundle entry, conditional criteria, includes, paging, history and every
operation — runs with an :class:`AccessSession`, which the API builds from the authenticated caller
before anything else happens (``interactions/request.py``). There is no other way for an interaction
to reach data: the session's methods are the reads (``read``, ``vread``, ``search``, ``history``,
``visible_matches``) and the writes (``transaction``), and each applies the policy and records the
access. Interactions and operations never hold the store itself (``tests/security_http/
test_structure.py`` enforces this).

*Hidden means absent.* What the caller may not see behaves as if it did not exist: a read answers
404 exactly as for an unknown id; a search leaves it out (and its includes); a conditional criterion
does not match it. The refusal is still audited, with the patient it concerns, so the patient's access
log shows the probe (AC-14, AC-18, AC-24).

*One decision.* ``decide`` is the only place a verdict is made: it loads the patients' facts and asks
``AccessPolicy.can_see``. Write units decide with the same function over facts read through the unit
(``TxFacts``), and the compiled read by id (``read_gate.py``) caches its verdicts.

Open mode (``KZFHIR_SECURITY_ENABLED=false``, development and tests only) is a session whose policy
is absent: every decision allows, nothing is recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, NoReturn, Protocol, TypeVar

import orjson

from fhir_server.errors import FhirError
from fhir_server.i18n import msg
from fhir_server.search.query import SearchQuery
from fhir_server.security.audit.access_log import access_log_entry
from fhir_server.security.audit.balp import AuditTarget, denied_event, rest_event, rest_events
from fhir_server.security.audit.codes import MINOR_FAILURE
from fhir_server.security.audit.notify import break_glass_notice
from fhir_server.security.audit.read_notices import NOTIFY_TOPIC
from fhir_server.security.context import RequestContext
from fhir_server.security.facts_store import FACT_TYPES, RequestFacts, SharedFacts
from fhir_server.security.policy import AccessPolicy, Action, Decision, PatientFacts, Verdict, smart_permissions
from fhir_server.security.policy.granular import restrict_query
from fhir_server.storage.protocols import HistoryPage, HistoryQuery, Store, StoredResource, TxView

T = TypeVar("T")
AUTHORIZED = Verdict(Decision.AUTHORIZED, "security is switched off")
URGENT_TOPIC = "notification-urgent"  # break-glass notices: never held back for a digest (AC-02)
Notice = tuple[str, str, str, bytes]  # topic, patient id, idempotency key, payload
#: Conditional criteria are judged over at most this many candidates: hidden ones must not stop a
#: visible match from being found, and broader criteria are refused whatever the caller may see.
CONDITIONAL_CANDIDATES = 1000


class FactsSource(Protocol):
    """Where a decision's patient facts come from: the shared cache (requests) or a write unit."""

    def get_many(self, patient_ids: set[str]) -> list[PatientFacts]: ...


@dataclass(frozen=True, slots=True)
class Judged:
    """A resource with the verdict on it and the patients it belongs to."""

    verdict: Verdict
    patients: frozenset[str]

    @property
    def allowed(self) -> bool:
        return self.verdict.allowed


def patients_of(stored: StoredResource, resource: Mapping[str, Any] | None = None) -> frozenset[str]:
    """The compartment's patients of a stored version: the ``patients`` column computed when it was
    written (search/compartments.py), else computed from the content."""
    if stored.patients is not None:
        return frozenset(stored.patients.split()) if stored.patients else frozenset()
    from fhir_server.search.compartments import patient_compartment

    data = resource if resource is not None else orjson.loads(stored.data or b"{}")
    return frozenset(patient_compartment(dict(data)))


def content(stored: StoredResource) -> dict[str, Any]:
    """The stored JSON for a decision (orjson: exact decimals do not matter to the policy)."""
    data: dict[str, Any] = orjson.loads(stored.data or b"{}")
    return data


def decide(policy: AccessPolicy | None, ctx: RequestContext, facts: FactsSource, action: Action,
           resource: dict[str, Any], patients: Iterable[str], *, signers: frozenset[str] = frozenset()) -> Judged:
    """THE decision: the policy's verdict on one resource for a caller, with the facts of every patient it
    belongs to. Sessions (requests, write units) and the compiled read by id (read_gate.py) all call this."""
    ids = frozenset(patients)
    if policy is None:
        return Judged(AUTHORIZED, ids)
    verdict = policy.can_see(ctx, action, resource, facts.get_many(set(ids)), patient_ids=ids, signers=signers)
    return Judged(verdict, ids)


class Loaded:
    """Facts loaded beforehand (asynchronously), for ``decide``."""

    def __init__(self, facts: list[PatientFacts]) -> None:
        self._facts = facts

    def get_many(self, patient_ids: set[str]) -> list[PatientFacts]:
        return [f for f in self._facts if f.patient_id in patient_ids]


class Enforcer:
    """Process-wide: the policy (None in open mode), the shared facts cache, the store audit goes to."""

    def __init__(self, store: Store, policy: AccessPolicy | None, facts: SharedFacts | None) -> None:
        self.store = store
        self.policy = policy
        self.facts = facts
        self._pending: list[tuple[list[dict[str, Any]], list[Notice], asyncio.Future[None]]] = []
        self._drains: set[asyncio.Task[None]] = set()

    @property
    def enabled(self) -> bool:
        return self.policy is not None

    def session(self, ctx: RequestContext) -> AccessSession:
        return AccessSession(self, ctx)

    def facts_changed(self, resource_type: str, view: TxView) -> None:
        """Called by a write unit that stores a fact-bearing resource (Consent, CareTeam, ...): cached
        facts and verdicts are stale once it commits. (Write units themselves decide on facts read
        through their own view, ``TxFacts``, never on the cache.)"""
        if self.facts is not None and resource_type in FACT_TYPES:
            view.on_commit(self.facts.bump)

    async def record_durably(self, events: list[dict[str, Any]], notices: list[Notice]) -> None:
        """Commit audit events and notices that belong to no write. Requests arriving together share one
        unit (one chain append, one statement batch); each resumes once its records are committed."""
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
            write_records(view, events, notices)

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


def write_records(view: TxView, events: list[dict[str, Any]], notices: list[Notice]) -> None:
    if events:
        view.audit.append_events(events)
    for topic, patient, key, payload in notices:
        view.enqueue(topic, f"Patient/{patient}", key, payload)


class AccessSession:
    """One caller's access for the duration of one request (a batch shares it among its entries)."""

    def __init__(self, enforcer: Enforcer, ctx: RequestContext) -> None:
        self.enforcer = enforcer
        self.ctx = ctx
        self.policy = enforcer.policy
        self._facts = RequestFacts(enforcer.facts) if enforcer.facts is not None else None
        self._store = enforcer.store
        self.events: list[dict[str, Any]] = []  # what succeeded: commits with the write, or is flushed
        self.attempts: list[dict[str, Any]] = []  # refusals and probes: flushed even if the write fails
        self.notices: list[Notice] = []
        self.recorded = False  # something was recorded for this request (see ``ensure_recorded``)

    @property
    def enabled(self) -> bool:
        return self.policy is not None

    def ensure_recorded(self, target: AuditTarget, status: int, reason: str | None = None) -> None:
        """Every attempt leaves a record (AC-14): an interaction that recorded nothing itself (a search
        refused for its form, a conditional delete that matched nothing, a bad request) gets one event
        for the request as a whole, with its outcome."""
        if self.policy is None or self.recorded:
            return
        if status < 400:
            self.record(target, Verdict(Decision.AUTHORIZED, "nothing was disclosed or changed"), ())
        elif status in (401, 403):
            self.refused(target, reason or "refused")
        else:
            self.failed(target, reason or f"failed ({status})")

    # -- decisions ---------------------------------------------------------------------------------
    async def gate(self, action: Action, resource_type: str | None, target: AuditTarget, *,
                   operation: str | None = None, instance: bool = False) -> Verdict:
        """The type-level gate of an interaction; a refusal is audited and raised as 403 (it depends on
        the caller's role and scopes only, never on data)."""
        if self.policy is None:
            return AUTHORIZED
        verdict = self.policy.start(self.ctx, action, resource_type, operation=operation, instance_level=instance)
        if not verdict.allowed:
            await self.deny(target, verdict)
        return verdict

    def decide_with(self, facts: FactsSource, action: Action, resource: dict[str, Any],
                    patients: Iterable[str], *, signers: frozenset[str] = frozenset()) -> Judged:
        """THE decision (requests, write units and the compiled read all come here): the policy's
        verdict on one resource for this caller, with the facts of every patient it belongs to."""
        return decide(self.policy, self.ctx, facts, action, resource, patients, signers=signers)

    async def decide(self, action: Action, resource: dict[str, Any], patients: Iterable[str]) -> Judged:
        """``decide_with`` over the shared facts cache (loaded first, asynchronously)."""
        ids = frozenset(patients)
        if self.policy is None or self._facts is None:
            return Judged(AUTHORIZED, ids)
        loaded = await self._facts.get_many(set(ids))
        return self.decide_with(Loaded(loaded), action, resource, ids)

    async def decide_stored(self, action: Action, stored: StoredResource) -> Judged:
        if self.policy is None:  # open mode: nothing to judge, so the JSON need not be parsed
            return Judged(AUTHORIZED, patients_of(stored))
        resource = content(stored)
        return await self.decide(action, resource, patients_of(stored, resource))

    # -- recording ---------------------------------------------------------------------------------
    def record(self, target: AuditTarget, verdict: Verdict, patients: Iterable[str]) -> None:
        """A successful access: BALP AuditEvents (one per patient), and a notification to each patient
        whose data someone else used, changed or added (AC-18), urgent for break-glass (AC-02)."""
        if self.policy is None:
            return
        events = rest_events(self.ctx, target, set(patients), verdict)
        self.events += events
        self.recorded = True
        self._notify(events, target, verdict)

    def refused(self, target: AuditTarget, reason: str, patients: Iterable[str] = ()) -> None:
        """An access that was refused or showed nothing: the attempt, per patient it concerned (AC-14).
        The patient's access log lists it (AC-24); no notification is sent for what was not disclosed."""
        if self.policy is None:
            return
        self.recorded = True
        ids = sorted(set(patients))
        if ids:
            self.attempts += [denied_event(self.ctx, replace(target, patient_id=pid), reason) for pid in ids]
        else:
            self.attempts.append(denied_event(self.ctx, target, reason))

    def failed(self, target: AuditTarget, reason: str) -> None:
        """An attempt that failed for a reason other than access (unknown id, bad input)."""
        if self.policy is None:
            return
        self.recorded = True
        self.attempts.append(rest_event(self.ctx, target, None, outcome=MINOR_FAILURE, description=reason))

    async def deny(self, target: AuditTarget, verdict: Verdict, patients: Iterable[str] = ()) -> NoReturn:
        """Refuse with 403: for type-level gates and for operations that are only for certain callers —
        refusals whose answer does not depend on hidden data. The reason is shown; it names no data."""
        self.refused(target, verdict.reason, patients)
        await self.flush()
        raise FhirError("forbidden", msg("access.denied", reason=verdict.reason), code="forbidden")

    def _notify(self, events: list[dict[str, Any]], target: AuditTarget, verdict: Verdict) -> None:
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
        """Inside a write unit: the recorded successes and notices commit with the change."""
        write_records(view, self.events, self.notices)
        self.events, self.notices = [], []

    async def flush(self) -> None:
        """Commit what was recorded and not yet written (reads, refusals, probes) in a unit of its own."""
        if not self.events and not self.notices and not self.attempts:
            return
        events, notices = [*self.events, *self.attempts], self.notices
        self.events, self.attempts, self.notices = [], [], []
        await self.enforcer.record_durably(events, notices)

    # -- writes ------------------------------------------------------------------------------------
    async def transaction(self, unit: Callable[[TxView], T]) -> T:
        """Run a write unit; what the session recorded inside it commits with it (decision 5)."""

        def run(view: TxView) -> T:
            result = unit(view)
            self.write_into(view)
            return result

        return await self._store.transaction(run)

    # -- reads -------------------------------------------------------------------------------------
    async def read(self, resource_type: str, resource_id: str, *, action: Action = Action.READ,
                   interaction: str = "read", record: bool = True) -> StoredResource:
        """The current version the caller may see. An unknown id and a hidden one both answer 404; a
        deletion is 410 only when the caller could see what was deleted (hidden means absent)."""
        stored = await self._store.read(resource_type, resource_id)
        target = AuditTarget(interaction, resource_type, resource_id)
        if stored is None:
            self.failed(target, "unknown id")
            raise not_known(resource_type, resource_id)
        if stored.deleted:
            await self._gone(stored, action, target)
        judged = await self.decide_stored(action, stored)
        # built anew rather than dataclasses.replace (a few µs on every read)
        target = AuditTarget(interaction, resource_type, resource_id, str(stored.version))
        if not judged.allowed:
            self.refused(target, judged.verdict.reason, judged.patients)
            raise not_known(resource_type, resource_id)
        if record:
            self.record(target, judged.verdict, judged.patients)
        return stored

    async def visible(self, action: Action, stored: StoredResource | None) -> Judged | None:
        """The verdict on a stored version if the caller may see it; None if absent, deleted or hidden."""
        if stored is None or stored.deleted or stored.data is None:
            return None
        judged = await self.decide_stored(action, stored)
        return judged if judged.allowed else None

    async def _gone(self, stored: StoredResource, action: Action, target: AuditTarget) -> NoReturn:
        from fhir_server.interactions.base import version_headers

        prior = await self._store.vread(stored.type, stored.id, stored.version - 1) if stored.version > 1 else None
        judged = await self.visible(action, prior)
        if judged is None:
            self.refused(target, "the deleted resource was not visible to the caller",
                         patients_of(prior) if prior is not None and prior.data is not None else ())
            raise not_known(stored.type, stored.id)
        self.record(replace(target, version_id=str(stored.version)), judged.verdict, judged.patients)
        raise FhirError("gone", msg("resource.deleted", type=stored.type, id=stored.id),
                        headers=version_headers(stored, "", location=False))

    async def vread(self, resource_type: str, resource_id: str, version: int) -> StoredResource:
        """One version the caller may see: 404 for an unknown or hidden one, 410 for a deletion whose
        deleted content was visible."""
        target = AuditTarget("vread", resource_type, resource_id, str(version))
        stored = await self._store.vread(resource_type, resource_id, version)
        if stored is None:
            self.failed(target, "unknown version")
            raise FhirError("not_found", msg("resource.no_version", type=resource_type, id=resource_id,
                                             version=version))
        if stored.deleted:
            await self._gone(stored, Action.VREAD, target)
        judged = await self.decide_stored(Action.VREAD, stored)
        if not judged.allowed:
            self.refused(target, judged.verdict.reason, judged.patients)
            raise FhirError("not_found", msg("resource.no_version", type=resource_type, id=resource_id,
                                             version=version))
        self.record(target, judged.verdict, judged.patients)
        return stored

    async def keep_visible(self, action: Action, items: Sequence[tuple[T, StoredResource]]) -> list[tuple[T, Judged]]:
        """The items (each with its stored version) the caller may see, in order."""
        if self.policy is None:
            return [(item, Judged(AUTHORIZED, patients_of(stored))) for item, stored in items]
        kept = []
        for item, stored in items:
            judged = await self.decide_stored(action, stored)
            if judged.allowed:
                kept.append((item, judged))
        return kept

    def restricted(self, query: Any, action: Action) -> Any:
        """A search with the caller's SMART granular scopes added as a restriction (policy/granular.py):
        pages are filled from, and includes followed from, matching resources only. Every resource is
        still judged one by one (``keep_visible``); this keeps the non-matching ones out of the rows read."""
        if self.policy is None or not isinstance(query, SearchQuery):
            return query
        return restrict_query(query, self.ctx.scopes, smart_permissions(action, instance_level=True))

    async def history(self, query: HistoryQuery, start: Verdict, target: AuditTarget
                      ) -> tuple[HistoryPage, list[StoredResource]]:
        """One page of history with only the versions the caller may see. A short page is filled from
        the following ones (within a scan budget), so that empty pages do not count hidden versions.
        A deletion is shown when the caller could see the version it deleted. What the page disclosed
        is recorded per patient with the verdicts that allowed it (break-glass, AC-20 flags)."""
        from fhir_server.security.paging import fill_history

        return await fill_history(self, self._store, query, start, target)

    async def search(self, query: Any, target: AuditTarget, start: Verdict) -> Any:
        """A search page with only what the caller may see: matches, and includes followed only from
        visible resources (an include must not reveal what a hidden match points to). The access is
        recorded per patient; matches withheld are recorded as a refused attempt with the patients the
        query targeted (AC-14), so a probe of a patient's data shows in their access log."""
        from fhir_server.security.paging import fill_search

        return await fill_search(self, self._store, query, target, start)

    async def visible_matches(self, criteria: Any, action: Action) -> list[str]:
        """Ids of the current resources matching conditional criteria that the caller may see (outside a
        write unit: a conditional patch, whose patch is applied before the unit). More candidates than
        ``CONDITIONAL_CANDIDATES`` refuse the criteria as too broad, whatever their visibility."""
        candidates = await self._store.search_ids(criteria, CONDITIONAL_CANDIDATES + 1)
        if len(candidates) > CONDITIONAL_CANDIDATES:
            raise too_broad()
        out = []
        target = AuditTarget(action.value, query="conditional criteria")
        for resource_type, resource_id in candidates:
            stored = await self._store.read(resource_type, resource_id)
            if await self.visible(Action.READ, stored) is not None:
                out.append(resource_id)
            elif stored is not None and stored.data is not None:
                self.refused(replace(target, resource_type=resource_type, resource_id=resource_id),
                             "conditional criteria matched a resource the caller may not see", patients_of(stored))
        return out

    async def stream(self, query: Any, action: Action) -> AsyncIterator[tuple[list[tuple[Any, Judged]], int]]:
        """For bulk work (``$export``): every page of a search, each as the (SearchMatch, Judged) pairs the
        caller may see for ``action`` and the number of matches the page had. Nothing is recorded here: the
        caller records the disclosure once, when it is complete."""
        from fhir_server.search.cursor import decode_cursor
        from fhir_server.security.paging import as_stored

        current = self.restricted(query, action)
        while True:
            result = await self._store.search(current)
            matches = [m for m in result.matches if m.mode == "match"]
            yield await self.keep_visible(action, [(m, as_stored(m)) for m in matches]), len(matches)
            if not result.next_cursor:
                return
            current = replace(current, cursor=decode_cursor(result.next_cursor))

    def visible_in_unit(self, view: TxView, facts: FactsSource, candidates: Iterable[tuple[str, str]],
                        target: AuditTarget) -> list[tuple[str, str]]:
        """Inside a write unit: the candidate (type, id) pairs the caller may see; a hidden one is no match
        (conditional create/update/delete and conditional references), recorded as a probe."""
        out = []
        for resource_type, resource_id in candidates:
            stored = view.current(resource_type, resource_id)
            if stored is None or stored.deleted or stored.data is None:
                continue
            resource = content(stored)
            judged = self.decide_with(facts, Action.READ, resource, patients_of(stored, resource))
            if judged.allowed:
                out.append((resource_type, resource_id))
            else:
                self.refused(replace(target, resource_type=resource_type, resource_id=resource_id),
                             "conditional criteria matched a resource the caller may not see", judged.patients)
        return out

    async def exists_for_oversight(self, resource_type: str, resource_id: str, start: Verdict) -> bool:
        """Whether a resource exists (not deleted), for an operation the gate authorised by name for an
        oversight role (``$access-log`` of a patient for an auditor): it discloses existence only."""
        if self.policy is not None and start.decision is not Decision.AUTHORIZED:
            raise PermissionError("existence is disclosed only to a caller the gate authorised")
        stored = await self._store.read(resource_type, resource_id)
        return stored is not None and not stored.deleted

    # -- the store's other records, through the session ----------------------------------------------
    @property
    def records(self) -> Store:
        """The store for records that are not resources (audit chain rows, outbox, background jobs), for
        operations whose own gate already decided who may see them (``$access-log``, ``$notifications``,
        ``$export`` status). Resources are read only through the methods above."""
        return self._store


def too_broad() -> FhirError:
    return FhirError("precondition_failed", msg("conditional.too_broad", limit=CONDITIONAL_CANDIDATES),
                     code="too-costly")


def not_known(resource_type: str, resource_id: str) -> FhirError:
    """The answer for an unknown id and for one the caller may not see: the same, word for word."""
    return FhirError("not_found", msg("resource.not_known", type=resource_type, id=resource_id))


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
