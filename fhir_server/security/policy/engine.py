"""The access policy decision point (issue 5 part 2): ``start`` per interaction, ``can_see`` per
resource. Pure and synchronous: everything it needs is passed in, nothing is read from the store.

How the lead calls it (docs/security.md, "Calling the policy"):

* ``start(ctx, action, resource_type)`` once per interaction (and per batch/transaction entry).
  REJECT -> 403. AUTHORIZED -> no per-resource checks (auditor reading AuditEvents).
  PROCEED -> call ``can_see`` for every resource read, returned or written.
* ``can_see(ctx, action, resource, facts)`` for each resource: read, vread, each history
  version, each search match, each ``_include``/``_revinclude``, each ``$everything``/``$export``
  resource, each incoming resource of create/update, and for update/patch/delete ALSO the stored
  version (so nothing can be moved into or out of reach). It re-applies the type-level gate
  itself, so included resources of other types are safe. ``facts`` must cover every patient the
  resource belongs to (search/compartments.py, stored with each version); a missing patient means REJECT.
* ``Bundle.total``: see ``total_allowed``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

from fhir_server.i18n import msg
from fhir_server.search.compartments import get_compartments, patient_compartment
from fhir_server.security.auth.scopes import levels_allowing, levels_reaching
from fhir_server.security.context import RequestContext
from fhir_server.security.fhirtime import utc_now
from fhir_server.security.policy.blocking import (
    BLOCKED_REASON,
    OWNER_GROUNDS,
    block_record_verdict,
    is_block,
    is_blocked,
)
from fhir_server.security.policy.decision import Action, Decision, Verdict, smart_permissions
from fhir_server.security.policy.facts import PatientFacts
from fhir_server.security.policy.grants import Subject, patient_grant
from fhir_server.security.policy.granular import ResourceMatcher, granting_levels
from fhir_server.security.policy.owned import OWNED_TYPES, owned_verdict
from fhir_server.security.policy.rules import PolicySettings
from fhir_server.security.roles import ADMIN, AUDITOR, LEGAL_EXCEPTION, PATIENT, ROLES, SYSTEM


@cache
def _clinical_types() -> frozenset[str]:
    """Types the R4 patient CompartmentDefinition places in patients' compartments: clinical data."""
    return frozenset(get_compartments().types_in("Patient"))


GRANULAR_REFUSAL = "no granted scope's query matches this resource (SMART granular scope)"
_OVERSIGHT = Verdict(Decision.AUTHORIZED, "oversight access to the audit trail", ("oversight",))


def total_allowed(start_verdict: Verdict) -> bool:
    """May a search response carry ``Bundle.total``? Only when no per-resource filtering applies.

    Stricter than HAPI's ConsentInterceptor (which drops the total only when something was
    actually filtered): whenever results pass through ``can_see`` the total is omitted, so its
    presence or absence cannot reveal that hidden resources exist either.
    """
    return start_verdict.decision is Decision.AUTHORIZED


class AccessPolicy:
    """Deny-by-default access policy over roles, scopes, Consents and care relationships."""

    def __init__(self, settings: PolicySettings | None = None, *, clock: Callable[[], float] = utc_now,
                 matcher: ResourceMatcher | None = None) -> None:
        """``matcher``: the search engine's "does this resource match this query", for SMART granular
        scopes (policy/granular.py); without it a granular scope grants nothing."""
        self.settings = settings or PolicySettings()
        self._clock = clock
        self.matcher = matcher

    def start(
        self,
        ctx: RequestContext,
        action: Action,
        resource_type: str | None,
        *,
        operation: str | None = None,
        instance_level: bool = False,
    ) -> Verdict:
        """Type-level gate: authenticated, role known, scope permits, role may do this at all."""
        if not ctx.authenticated:
            return Verdict.reject(msg("auth.required_short"))
        if ctx.role not in ROLES:
            return Verdict.reject(f"unknown role {ctx.role!r}")
        if resource_type == "AuditEvent" and action.is_write:
            return Verdict.reject("AuditEvents cannot be created, changed or deleted through the API (AC-14)")
        letters = smart_permissions(action, instance_level=instance_level)
        for letter in letters:
            # a granular scope (…?category=x) reaches the type; each resource is checked in can_see
            if not levels_reaching(ctx.scopes, resource_type or "*", letter):
                return Verdict.reject(msg("policy.scope", letter=letter, type=resource_type or msg("policy.all_types")))
        verdict = self._role_gate(ctx, action, resource_type, operation)
        if verdict.decision is Decision.AUTHORIZED and not all(
                levels_allowing(ctx.scopes, resource_type or "*", letter) for letter in letters):
            # AUTHORIZED skips the per-resource checks a granular scope needs (oversight of AuditEvents)
            return Verdict.reject("granular scopes (with a query) are not supported for this access; "
                                  "it needs a scope on the whole type")
        return verdict

    def _role_gate(
        self, ctx: RequestContext, action: Action, resource_type: str | None, operation: str | None
    ) -> Verdict:
        if ctx.role in (AUDITOR, ADMIN):
            if resource_type == "AuditEvent" and action.is_read and action is not Action.EXPORT:
                return _OVERSIGHT
            allowed = self.settings.oversight_operations if ctx.role == AUDITOR else self.settings.admin_operations
            if action is Action.OPERATION and operation in allowed:
                return Verdict(Decision.AUTHORIZED, f"${operation} is an oversight operation", ("oversight",))
            if ctx.role == ADMIN and resource_type == "Flag":
                return Verdict.proceed("administrators keep block records (AC-26); other Flags are refused per "
                                       "resource")
            if ctx.role == AUDITOR or resource_type is None or resource_type in _clinical_types():
                return Verdict.reject(msg("policy.role_no_clinical", role=ctx.role))
        elif resource_type == "AuditEvent":
            return Verdict.reject("AuditEvents are for oversight roles; patients see theirs via Patient/$access-log")
        if ctx.role == LEGAL_EXCEPTION:
            if not action.is_read or action is Action.EXPORT:
                return Verdict.reject("legal-exception access is read-only and record by record (AC-11)")
            if not ctx.legal_basis:
                return Verdict.reject("legal-exception access needs a recorded legal basis (AC-11)")
        return Verdict.proceed()

    def can_see(
        self,
        ctx: RequestContext,
        action: Action,
        resource: dict[str, Any],
        facts: Iterable[PatientFacts] = (),
        *,
        patient_ids: Iterable[str] | None = None,
        signers: frozenset[str] = frozenset(),
    ) -> Verdict:
        """Instance-level decision for one resource (AUTHORIZED or REJECT, never PROCEED). ``signers``:
        IINs of verified EDS signatures the write carries (a Consent recorded as a signed form, AC-08)."""
        resource_type = str(resource.get("resourceType"))
        gate = self.start(ctx, action, resource_type, instance_level=True)
        if gate.decision is not Decision.PROCEED:
            return gate
        granting = self._granting(ctx, action, resource, resource_type)
        if not all(granting):
            # SMART granular scopes: only resources matching a granted scope's query (issue 16)
            return Verdict.reject(GRANULAR_REFUSAL)
        special = self._special(ctx, action, resource, resource_type)
        if special is not None:
            return special
        ids = set(patient_ids) if patient_ids is not None else patient_compartment(resource)
        if not ids:
            return self._directory(ctx, action, resource_type)
        if ctx.role in (AUDITOR, ADMIN):
            return Verdict.reject(msg("policy.role_no_clinical", role=ctx.role))
        scope_check = self._patient_scope(ctx, granting, ids)
        if scope_check is not None:
            return scope_check
        facts = list(facts)
        if ctx.role == LEGAL_EXCEPTION:
            if is_blocked(resource, facts, self._clock()):
                return Verdict.reject(BLOCKED_REASON)
            return Verdict(
                Decision.AUTHORIZED,
                "legal exception (AC-11)",
                ("legal-exception",),
                legal_basis=ctx.legal_basis,
            )
        verdict = self._all_patients(ctx, action, resource, resource_type, ids, facts, signers)
        if verdict.allowed and not OWNER_GROUNDS & set(verdict.grounds) and (
                is_block(resource) or is_blocked(resource, facts, self._clock())):
            # AC-26: a blocked record, and the block itself, are the patient's alone (whatever else granted)
            return Verdict.reject(BLOCKED_REASON)
        return verdict

    def _special(
        self, ctx: RequestContext, action: Action, resource: dict[str, Any], resource_type: str
    ) -> Verdict | None:
        if resource_type == "Flag" and is_block(resource):
            block = block_record_verdict(ctx.role, action, resource)
            if block is not None:
                return block
        if resource_type in OWNED_TYPES:  # a Subscription is its owner's (policy/owned.py)
            return owned_verdict(ctx, action, resource)
        if resource_type == "Task" and ctx.role == ADMIN and action is not Action.DELETE:
            codings = (resource.get("code") or {}).get("coding", [])
            if any(isinstance(c, dict) and c.get("system") == self.settings.dsr_task_system for c in codings):
                return Verdict(Decision.AUTHORIZED, "data-subject request queue", ("data-subject-request",))
        if ctx.fhir_user and ctx.fhir_user == f"{resource_type}/{resource.get('id')}" and action.is_read:
            return Verdict(Decision.AUTHORIZED, "the caller's own record", ("self",))
        return None

    def _directory(self, ctx: RequestContext, action: Action, resource_type: str) -> Verdict:
        # Resources in no patient's compartment (Practitioner, Organization, Location, ValueSet ...).
        if action.is_read:
            return Verdict(Decision.AUTHORIZED, "not patient data", ("directory",))
        if ctx.role in (SYSTEM, ADMIN):
            return Verdict(Decision.AUTHORIZED, f"{ctx.role} maintains {resource_type}", ("directory",))
        return Verdict.reject(f"only systems and administrators change {resource_type} resources")

    def _granting(self, ctx: RequestContext, action: Action, resource: dict[str, Any], resource_type: str
                  ) -> list[frozenset[str]]:
        """Per permission letter the action needs, the levels of the scopes that grant it on this very
        resource (an unrestricted scope on its type, or a granular one whose query it matches)."""
        return [granting_levels(ctx.scopes, resource_type, letter, resource, self.matcher)
                for letter in smart_permissions(action, instance_level=True)]

    def _patient_scope(self, ctx: RequestContext, granting: list[frozenset[str]], ids: set[str]) -> Verdict | None:
        """SMART ``patient/`` scopes reach only the patient in context (own record for patients): a letter
        granted on this resource by ``patient/`` scopes alone needs the patient in context."""
        if all(levels - {"patient"} for levels in granting):
            return None
        context = ctx.fhir_user if ctx.role == PATIENT else ctx.launch_patient
        if context is None or {f"Patient/{pid}" for pid in ids} != {context}:
            return Verdict.reject("patient/ scopes cover only the patient in context")
        return None

    def _all_patients(
        self,
        ctx: RequestContext,
        action: Action,
        resource: dict[str, Any],
        resource_type: str,
        ids: set[str],
        facts: Iterable[PatientFacts],
        signers: frozenset[str] = frozenset(),
    ) -> Verdict:
        """Every patient the resource belongs to must allow it (each owner's consent, AC-01)."""
        by_id = {item.patient_id: item for item in facts}
        subject = Subject(resource, resource_type, signers)
        at = self._clock()
        verdicts = []
        for patient_id in sorted(ids):
            if patient_id not in by_id:
                return Verdict.reject(f"no access facts were loaded for Patient/{patient_id}")
            verdict = patient_grant(ctx, action, subject, by_id[patient_id], at, self.settings)
            if not verdict.allowed:
                return verdict
            verdicts.append(verdict)
        return Verdict(
            Decision.AUTHORIZED,
            "; ".join(dict.fromkeys(v.reason for v in verdicts)),
            tuple(dict.fromkeys(g for v in verdicts for g in v.grounds)),
            tuple(dict.fromkeys(c for v in verdicts for c in v.consents)),
            emergency=any(v.emergency for v in verdicts),
            flags=tuple(dict.fromkeys(f for v in verdicts for f in v.flags)),
        )
