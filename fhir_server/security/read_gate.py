"""The secured read by id, compiled (issue 5: "policy + audit overhead <= 20 % on read-by-id").

``GET [type]/[id]`` is the request a FHIR server answers most. The general path (``read.handle``
with an :class:`AccessSession`) parses the resource, asks the consent engine, builds a BALP
AuditEvent and a notification, and chains them, about 300 µs per read. This module answers the same
read with the same decision and the same audit trail from three caches of work already done:

* **callers** — a verified bearer token with the same security headers from the same address maps
  to the same RequestContext; kept while the verifier would accept the token (exp plus its leeway)
  and at most ``VERIFIED_CACHE_SECONDS`` (as the verifier's own cache, so a key removed from the
  JWKS stops working just as soon);
* **decisions** — a verdict of the engine for (caller, type, patient) is reused while it cannot
  differ for another resource of that type and patient: none of the patient's Consents has a
  provision that looks at the resource's own data (``code``, ``securityLabel``, ``data``,
  ``dataPeriod``, a ``class`` that is a profile), no fact-bearing write has committed since
  (the facts generation), and no period in the patient's facts starts or ends before the next use
  (``horizon``; capped at ``DECISION_SECONDS``), the patient has no block of records (AC-26), and no SMART
  granular scope of the caller looks at the resource's own data (policy/granular.py). Anything else is
  decided by the engine each time;
* **audit** — each read appends one line to the store's read-audit journal before it is answered
  (storage/sqlite/audit/journal.py: durable against a killed process); the writer chains the lines
  as read blocks under a template per caller and verdict (security/audit/read_blocks.py), about a
  second at a time, and queues the patients' notifications with them (read_notices.py). A store
  that keeps no journal file but stages the same lines in its database (``storage.audit.ReadStaging``:
  PostgreSQL, storage/postgres/read_audit.py) is awaited instead: the read is answered once its
  lines are committed there, batched with the other reads of the moment.

Whatever this path does not decide by itself goes to the general path, which audits refusals
(403), answers 404/410 and conditional reads, break-glass (urgent notices, AC-02), the caller's own
record, administrators, resources of several patients and AuditEvents.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from fhir_server.search.compartments import patient_compartment
from fhir_server.security.audit.read_blocks import (
    ReadTemplate,
    block_bytes,
    build_template,
    micros_text,
    template_bytes,
)
from fhir_server.security.audit.read_notices import notices
from fhir_server.security.auth.errors import AuthError
from fhir_server.security.auth.request import context_from_request, request_id_header
from fhir_server.security.auth.verifier import VERIFIED_CACHE_SECONDS, TokenVerifier
from fhir_server.security.context import RequestContext, next_request_id
from fhir_server.security.facts_store import SharedFacts
from fhir_server.security.fhirtime import instant_range
from fhir_server.security.policy import AccessPolicy, Action, PatientFacts, Verdict
from fhir_server.security.policy.blocking import has_blocks
from fhir_server.security.policy.granular import granular_on
from fhir_server.security.policy.owned import OWNED_TYPES
from fhir_server.security.roles import ADMIN
from fhir_server.security.session import Loaded, decide
from fhir_server.storage.audit import ReadStaging
from fhir_server.storage.protocols import Store, StoredResource, TxView

MAX_CALLERS = 10_000
MAX_DECISIONS = 100_000
MAX_TEMPLATES = 10_000
DECISION_SECONDS = 60.0
_PROCESS = f"{os.getpid():x}-{secrets.token_hex(4)}"  # journal template keys are unique per process
#: Consent provision elements that test the resource itself: a decision under them is per resource.
RESOURCE_CONDITIONS = ("code", "securityLabel", "data", "dataPeriod")


@dataclass(frozen=True, slots=True)
class Caller:
    ctx: RequestContext
    serial: int
    valid_until: float
    #: has the token been revoked since (RFC 7009, the built-in authorization server's denylist)? None:
    #: its issuer keeps no denylist
    revoked: Callable[[], bool] | None = None

    def usable(self, now: float) -> bool:
        return now < self.valid_until and (self.revoked is None or not self.revoked())


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    template: ReadTemplate
    generation: int
    valid_until: float


def _walk_periods(node: Any, out: list[float]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("start", "end") and isinstance(value, str):
                bounds = instant_range(value)
                if bounds is not None:
                    out.extend(bounds)
            else:
                _walk_periods(value, out)
    elif isinstance(node, list):
        for item in node:
            _walk_periods(item, out)


def horizon(facts: PatientFacts, now: float) -> float:
    """The first instant after ``now`` at which a period in the facts begins or ends."""
    bounds: list[float] = []
    for resource in (*facts.consents, *facts.care_relationships, *facts.representatives):
        _walk_periods(resource, bounds)
    return min((b for b in bounds if b > now), default=float("inf"))


def _type_like(code: Any) -> bool:
    return isinstance(code, str) and code[:1].isupper() and code.isalnum()


def _provision_reads_resource(provision: Any) -> bool:
    if not isinstance(provision, dict):
        return False
    if any(provision.get(name) not in (None, [], {}) for name in RESOURCE_CONDITIONS):
        return True
    for item in provision.get("class", []) or []:
        if not isinstance(item, dict) or not _type_like(item.get("code")):
            return True  # a profile URL (or something unreadable): judged per resource
    return any(_provision_reads_resource(child) for child in provision.get("provision", []) or [])


def per_resource(facts: PatientFacts) -> bool:
    """Does any Consent of the patient look at a resource's own data, or does a block of some of the
    patient's records exist (AC-26: blocked or not is a property of the very resource)?"""
    return has_blocks(facts) or any(_provision_reads_resource(consent.get("provision"))
                                    for consent in facts.consents)


class ReadAudit:
    """Writes each read's audit record to the store's read-audit journal before the read is
    answered (``store.audit.journal_reads``, storage/audit.py), or stages it in the store's database
    (``ReadStaging.stage_reads``); a template goes first, once, when first used."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.log = store.audit
        self._keys = itertools.count(1)
        self._staging = self.log if isinstance(self.log, ReadStaging) else None
        # templates whose first staged line is in flight: later reads under them wait for it, not write their own
        self._pending: dict[int, asyncio.Event] = {}

    def journal(self, template: ReadTemplate, record: tuple[int, str, str, str, str, str | None]) -> bool:
        """Journal ``record`` (micros, request id, type, id, version, patient id or None); False when
        the store keeps no journal (then ``commit`` it)."""
        if self._staging is not None:
            return False
        head = b""
        if template.key is None:
            key = f"{_PROCESS}-{next(self._keys):x}"
            head = orjson.dumps(["T", key, template.caller, template.event], option=orjson.OPT_APPEND_NEWLINE)
        else:
            key = template.key
        if not self.log.journal_reads(head + orjson.dumps(["R", key, *record], option=orjson.OPT_APPEND_NEWLINE)):
            return False
        template.key = key  # only once its line is written: later records may then rely on it
        return True

    async def commit(self, template: ReadTemplate, record: tuple[int, str, str, str, str, str | None]) -> None:
        """A store that keeps no journal: the record staged in its database (``ReadStaging``), or else
        the template, the record and the patient's notification (AC-18) in a relaxed unit of their own;
        committed before the read is answered."""
        if self._staging is not None:
            await self._stage(self._staging, template, record)
            return
        data = template_bytes(template.caller, template.event)
        key = f"{_PROCESS}-{next(self._keys):x}"
        line = orjson.dumps(["R", key, *record])
        recorded, patient = micros_text(record[0]), record[-1]

        def unit(view: TxView) -> None:
            trail = view.audit
            seq = trail.append_read_block(block_bytes(line, {key: trail.append_template(data, recorded)}, recorded),
                                          recorded, [f"Patient/{patient}"] if patient else [])
            if patient and template.caller != f"Patient/{patient}":
                for topic, partition, notice_key, payload in notices({patient: [seq]}):
                    view.enqueue(topic, partition, notice_key, payload)

        await self.store.transaction(unit, relaxed=True)


    async def _stage(self, staging: ReadStaging, template: ReadTemplate,
                     record: tuple[int, str, str, str, str, str | None]) -> None:
        """Stage the record's journal line, after its template's line the first time. The template's key is
        used by later records only once the line naming it is committed (their batches then come after it);
        reads that arrive while it is in flight wait for it rather than stage a template of their own."""
        while template.key is None and (pending := self._pending.get(id(template))) is not None:
            await pending.wait()  # it failed if the key is still unset: then this read stages the template
        if template.key is not None:
            await staging.stage_reads(orjson.dumps(["R", template.key, *record], option=orjson.OPT_APPEND_NEWLINE))
            return
        key = f"{_PROCESS}-{next(self._keys):x}"
        head = orjson.dumps(["T", key, template.caller, template.event], option=orjson.OPT_APPEND_NEWLINE)
        done = self._pending[id(template)] = asyncio.Event()
        try:
            await staging.stage_reads(head + orjson.dumps(["R", key, *record], option=orjson.OPT_APPEND_NEWLINE))
            template.key = key
        finally:
            del self._pending[id(template)]
            done.set()


class ReadGate:
    """The compiled secured read by id (see the module docstring)."""

    def __init__(self, policy: AccessPolicy, facts: SharedFacts, verifier: TokenVerifier, store: Store) -> None:
        self.policy = policy
        self.facts = facts
        self.verifier = verifier
        self.audit = ReadAudit(store)
        self._callers: dict[tuple[str | None, ...], Caller] = {}
        self._decisions: dict[tuple[int, str, str], Decision] = {}
        self._templates: dict[bytes, ReadTemplate] = {}
        self._profiles: dict[str, tuple[int, bool, float]] = {}
        self._serial = 0

    # -- callers ------------------------------------------------------------------------------------
    @staticmethod
    def _caller_key(headers: Mapping[str, str], client_ip: str | None) -> tuple[str | None, ...] | None:
        authorization = headers.get("authorization")
        if authorization is None or "x-break-glass-reason" in headers:
            return None
        return (authorization, headers.get("x-purpose-of-use"), headers.get("x-legal-basis"), client_ip)

    def known_caller(self, headers: Mapping[str, str], client_ip: str | None) -> Caller | None:
        """The cached caller, without awaiting anything (the common case)."""
        key = self._caller_key(headers, client_ip)
        known = self._callers.get(key) if key is not None else None
        return known if known is not None and known.usable(time.time()) else None

    async def caller(self, headers: Mapping[str, str], client_ip: str | None) -> Caller | None:
        """The caller of a request that this path may serve, or None (the general path authenticates,
        and audits a failure)."""
        key = self._caller_key(headers, client_ip)
        if key is None or key[0] is None:
            return None
        authorization = key[0]
        now = time.time()
        known = self._callers.get(key)
        if known is not None:
            if known.usable(now):
                return known
            del self._callers[key]
            return None
        try:
            ctx = await context_from_request(headers, client_ip, self.verifier)
            token = await self.verifier.verify_token(authorization.strip().partition(" ")[2].strip())
        except AuthError:
            return None
        if ctx.role == ADMIN or ctx.break_glass_reason:
            return None  # administrators' reads are rare and may touch the request queue's Tasks
        if len(self._callers) >= MAX_CALLERS:
            self._callers.clear()
        self._serial += 1
        # as long as the verifier itself would accept the token (exp plus its clock-skew leeway)
        expires = float(token.expires_at + self.verifier.config.leeway_seconds)
        caller = Caller(ctx, self._serial, min(expires, now + VERIFIED_CACHE_SECONDS),
                        self.verifier.revocation_check(token))
        self._callers[key] = caller
        return caller

    # -- decisions ----------------------------------------------------------------------------------
    def _cached(self, caller: Caller, resource_type: str, patients: str) -> Decision | None:
        known = self._decisions.get((caller.serial, resource_type, patients))
        if known is not None and known.generation == self.facts.generation and time.time() < known.valid_until:
            return known
        return None

    @staticmethod
    def _servable(caller: Caller, stored: StoredResource, patients: str) -> bool:
        """One patient (or none), not the caller's own record (the policy's special case), and not a
        resource whose verdict depends on its owner (policy/owned.py): those are decided every time."""
        return " " not in patients and caller.ctx.fhir_user != f"{stored.type}/{stored.id}" \
            and stored.type not in OWNED_TYPES

    def known_decision(self, caller: Caller, stored: StoredResource) -> Decision | None:
        """The cached decision for this read, without awaiting anything (the common case)."""
        patients = stored.patients
        if patients is None or not self._servable(caller, stored, patients):
            return None
        return self._cached(caller, stored.type, patients)

    async def decide(self, caller: Caller, stored: StoredResource) -> tuple[Decision, str] | None:
        """The verdict and audit template for this read, with the resource's patient ("" none), when
        it is allowed and needs nothing the general path adds; None otherwise."""
        patients = stored.patients
        if patients is None:  # a row written before the column existed
            patients = " ".join(sorted(patient_compartment(orjson.loads(stored.data or b"{}"))))
        if not self._servable(caller, stored, patients):
            return None
        known = self._cached(caller, stored.type, patients)
        if known is not None:
            return known, patients
        generation = self.facts.generation
        now = time.time()
        facts = [await self.facts.get(patients)] if patients else []
        resource = orjson.loads(stored.data or b"{}")
        # the same decision as every other path (session.decide); only its reuse is this module's
        verdict = decide(self.policy, caller.ctx, Loaded(facts), Action.READ, resource,
                         {patients} if patients else set()).verdict
        if not verdict.allowed or verdict.emergency:
            return None
        decision = Decision(verdict, self._template(caller, verdict, bool(patients)), generation,
                            min([now + DECISION_SECONDS, *(horizon(f, now) for f in facts)]))
        # a verdict under a granular scope (…?category=x) depends on the resource itself: not reused
        if not any(per_resource(f) for f in facts) and self.facts.generation == generation \
                and not granular_on(caller.ctx.scopes, stored.type, "r"):
            if len(self._decisions) >= MAX_DECISIONS:
                self._decisions.clear()
            self._decisions[(caller.serial, stored.type, patients)] = decision
        return decision, patients

    def _template(self, caller: Caller, verdict: Verdict, with_patient: bool) -> ReadTemplate:
        """The audit template of this decision, reused when an equal one exists. A fact-bearing write
        (a Patient, a Consent) voids every cached decision; without reuse each read after it would chain
        a new template row, about 2.5 KB, and on a store that keeps changing nearly every read did (issue
        12: the bytes an audited read costs). Equal bytes mean the same caller, verdict and interaction."""
        template = build_template(caller.ctx, verdict, with_patient)
        key = template_bytes(template.caller, template.event)
        known = self._templates.get(key)
        if known is not None:
            return known
        if len(self._templates) >= MAX_TEMPLATES:
            self._templates.clear()  # bounded memory; an evicted template is simply written again
        self._templates[key] = template
        return template

    def record(self, decision: Decision, patient: str, request_id: str, stored: StoredResource
               ) -> tuple[int, str, str, str, str, str | None] | None:
        """Record the read durably (AC-14) before it is answered: journaled at once (None), or, when
        the store keeps no journal, the record to ``commit``."""
        record = (time.time_ns() // 1000, request_id, stored.type, stored.id, str(stored.version), patient or None)
        return None if self.audit.journal(decision.template, record) else record

    async def commit(self, decision: Decision, record: tuple[int, str, str, str, str, str | None]) -> None:
        await self.audit.commit(decision.template, record)


def request_id_of(headers: Mapping[str, str]) -> str:
    """X-Request-Id when usable (as for every other request), else a fresh one."""
    return request_id_header(headers) or next_request_id()
