"""Instance-level access to ONE patient's data: who may reach it, and on what ground.

Order of the rules (the first that applies decides; anything not granted is denied, AC-12):

1. the patient themself, or a representative with verified authority (AC-09): the whole
   compartment for reading; writing only the types in ``PATIENT_WRITABLE``; never deleting;
2. writing a Consent: only the patient and a verified representative (rule 1), a medical worker or the
   organisation proposing one (draft, proposed: AC-04), or the organisation recording the patient's
   EDS-signed consent (AC-08); no other Consent, and no break-glass, ever grants writing one. A
   medical worker or the organisation may register a person together with such a Consent (AC-04);
3. the patient's Consents, evaluated with the caller's identities (fhirUser, organisation BIN,
   care-team memberships): AC-01, AC-03, AC-10, TM-15;
4. break-glass for practitioners (AC-02): when nothing above granted, a current break-glass
   session authorizes emergency reads and records, flagged for audit and notification.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from fhir_server.i18n import english, msg
from fhir_server.security.context import RequestContext
from fhir_server.security.policy.conditions import AccessRequest, ResourceFacts, describe_resource
from fhir_server.security.policy.consent import Ruling, evaluate_consents
from fhir_server.security.policy.decision import CONSENT_ACTIONS, Action, Decision, Verdict
from fhir_server.security.policy.duties import BREAK_GLASS, duty_flags
from fhir_server.security.policy.facts import PatientFacts
from fhir_server.security.policy.relationships import caller_identities, verified_representatives
from fhir_server.security.policy.rules import WORKER_CONSENT_STATUSES, PolicySettings
from fhir_server.security.refs import IIN_SYSTEM, reference_keys
from fhir_server.security.roles import DEFAULT_PURPOSE, PATIENT, PRACTITIONER, RELATED_PERSON, SYSTEM

BREAK_GLASS_ACTIONS = frozenset(
    {
        Action.READ,
        Action.VREAD,
        Action.SEARCH,
        Action.HISTORY,
        Action.OPERATION,
        Action.CREATE,
        Action.UPDATE,
        Action.PATCH,
    }
)


class Subject:
    """The data side of a decision, shared by all the resource's patients. The Consent-relevant
    description (codings, labels, dates) is read only if some Consent actually has to be consulted."""

    def __init__(self, resource: dict[str, Any], resource_type: str, signers: frozenset[str] = frozenset()) -> None:
        self.resource = resource
        self.resource_type = resource_type
        self.signers = signers  # IINs of verified EDS signatures the write carries (AC-08)

    @cached_property
    def description(self) -> ResourceFacts:
        return describe_resource(self.resource)


def break_glass_active(ctx: RequestContext, at: float) -> bool:
    """A practitioner's break-glass session that names a reason and has not expired (AC-02)."""
    return (
        ctx.role == PRACTITIONER
        and bool(ctx.break_glass_reason)
        and ctx.break_glass_until is not None
        and at < ctx.break_glass_until
    )


def _as_owner(action: Action, subject: Subject, settings: PolicySettings, ground: str) -> Verdict:
    if action.is_read:
        return Verdict(Decision.AUTHORIZED, f"{ground}: own data", (ground,))
    if action is Action.DELETE:
        return Verdict.reject(msg("policy.owner_no_delete"))
    if subject.resource_type in settings.patient_writable:
        return Verdict(Decision.AUTHORIZED, f"{ground}: patient-entered data", (ground,))
    return Verdict.reject(msg("policy.worker_entered", type=subject.resource_type))


def _consent_write(ctx: RequestContext, action: Action, subject: Subject, facts: PatientFacts,
                   at: float) -> Verdict:
    """Who may write a Consent (issue 10 §3, AC-04, AC-08, AC-09): never another Consent, nor break-glass.
    The patient and a verified representative are handled before (their own data). Each version of a
    write is judged: the one replaced and the one written, so nobody but them changes an active one."""
    if action is Action.DELETE:
        return Verdict.reject(msg("policy.consent_no_delete"))
    status = subject.resource.get("status")
    if ctx.role in (PRACTITIONER, SYSTEM) and status in WORKER_CONSENT_STATUSES:
        return Verdict(Decision.AUTHORIZED, "recording a request for the patient's consent (AC-04)",
                       ("recording-consent",))
    if ctx.role == SYSTEM and signed_by_owner(subject, facts, at):
        return Verdict(Decision.AUTHORIZED, "recording the patient's consent signed with their EDS (AC-08)",
                       ("recording-consent",))
    if ctx.role == SYSTEM:
        return Verdict.reject(msg("policy.consent_signed_only"))
    return Verdict.reject(msg("policy.consent_owner_only"))


def signed_by_owner(subject: Subject, facts: PatientFacts, at: float) -> bool:
    """The write carries the EDS of the patient or of a verified representative (AC-08, AC-09)."""
    owners = set(facts.identifiers)
    for representative in facts.representatives:
        if f"RelatedPerson/{representative.get('id')}" in verified_representatives(facts, at):
            owners |= iins_of(representative)
    return bool(owners & subject.signers)


def iins_of(resource: dict[str, Any]) -> set[str]:
    return {str(i.get("value")) for i in resource.get("identifier", []) or []
            if isinstance(i, dict) and i.get("system") == IIN_SYSTEM and i.get("value")}


def _registers_patient(ctx: RequestContext, action: Action, subject: Subject, facts: PatientFacts,
                       at: float) -> bool:
    """A medical worker or the organisation's system registers a person together with a Consent of that
    person that names it (a request for consent, AC-04, or the signed consent itself): to ask for
    consent one has to say whom one asks. Nothing else of the patient may be collected before it is
    active."""
    if action is not Action.CREATE or subject.resource_type != "Patient" or ctx.role not in (PRACTITIONER,
                                                                                             SYSTEM):
        return False
    mine = caller_identities(ctx, facts, at)
    return any(consent.get("status") in (*WORKER_CONSENT_STATUSES, "active") and mine & consent_actors(consent)
               for consent in facts.consents)


def consent_actors(consent: dict[str, Any]) -> set[str]:
    """Every identity a Consent names: its provision actors (nested too) and its organization."""
    keys: set[str] = set()
    for organization in consent.get("organization", []) or []:
        keys |= reference_keys(organization)
    stack = [consent.get("provision")]
    while stack:
        provision = stack.pop()
        if not isinstance(provision, dict):
            continue
        for actor in provision.get("actor", []) or []:
            if isinstance(actor, dict):
                keys |= reference_keys(actor.get("reference"))
        stack.extend(provision.get("provision", []) or [])
    return keys


def _by_consent(
    ctx: RequestContext,
    action: Action,
    subject: Subject,
    facts: PatientFacts,
    at: float,
    reps: frozenset[str],
) -> tuple[Ruling | None, tuple[str, ...]]:
    request = AccessRequest(
        actors=caller_identities(ctx, facts, at),
        actions=CONSENT_ACTIONS[action],
        purpose=ctx.purpose_of_use or DEFAULT_PURPOSE.get(ctx.role or "", "TREAT"),
        resource_type=subject.resource_type,
        at=at,
        about=subject.description,
    )
    return evaluate_consents(facts.consents, request, facts.patient_id, reps)


def patient_grant(
    ctx: RequestContext,
    action: Action,
    subject: Subject,
    facts: PatientFacts,
    at: float,
    settings: PolicySettings,
) -> Verdict:
    """May the caller do ``action`` on this resource as far as patient ``facts.patient_id`` goes?"""
    reps = verified_representatives(facts, at)
    if ctx.role == PATIENT and ctx.fhir_user == f"Patient/{facts.patient_id}":
        return _as_owner(action, subject, settings, "own-compartment")
    if ctx.role == RELATED_PERSON and ctx.fhir_user in reps:
        return _as_owner(action, subject, settings, "representative")
    if ctx.role not in (PATIENT, RELATED_PERSON, PRACTITIONER, SYSTEM):
        return Verdict.reject(msg("policy.role_no_patient_data", role=ctx.role))
    if subject.resource_type == "Consent" and action.is_write:
        return _consent_write(ctx, action, subject, facts, at)
    if subject.resource_type == "Consent" and ctx.role == SYSTEM and subject.signers and action is Action.READ \
            and signed_by_owner(subject, facts, at):
        # only a write carries signers: the organisation replaces a Consent of the patient with a version the
        # patient signed (a revocation given in the e-government cabinet, AC-06, AC-08)
        return Verdict(Decision.AUTHORIZED, "the consent the patient's signed write replaces (AC-08)",
                       ("recording-consent",))
    if _registers_patient(ctx, action, subject, facts, at):
        return Verdict(Decision.AUTHORIZED, "registering the patient with their consent (request) (AC-04)",
                       ("registration",))
    ruling, consents = _by_consent(ctx, action, subject, facts, at, reps)
    if ruling is Ruling.PERMIT:
        return Verdict(Decision.AUTHORIZED, "granted by the patient's consent", ("consent",), consents,
                       flags=_flags(ctx, facts, at, consents))
    if break_glass_active(ctx, at) and action in BREAK_GLASS_ACTIONS:
        return Verdict(
            Decision.AUTHORIZED,
            msg("policy.break_glass", reason=ctx.break_glass_reason),
            ("break-glass",),
            emergency=True,
            flags=(BREAK_GLASS,),
        )
    if ruling is Ruling.DENY:
        return Verdict(Decision.REJECT, msg("policy.consent_denies", consent=consents[0]), ("consent",),
                       consents)
    return Verdict.reject(_no_consent(ctx, action, facts.patient_id))


def _flags(ctx: RequestContext, facts: PatientFacts, at: float, consents: tuple[str, ...]) -> tuple[str, ...]:
    """AC-20: is the consented access within the caller's duties (policy/duties.py)?"""
    if ctx.role != PRACTITIONER:
        return ()
    granting = [c for c in facts.consents if f"Consent/{c.get('id')}" in consents]
    named = bool(ctx.fhir_user) and any(ctx.fhir_user in consent_actors(c) for c in granting)
    return duty_flags(ctx, caller_identities(ctx, facts, at), named)


def _no_consent(ctx: RequestContext, action: Action, patient_id: str) -> str:
    """Who lacks what, and where to read how to get it (issue 13 §3). Only ever shown to the caller about
    data they named themselves (their own write); refused reads answer as absent (docs/security.md)."""
    text = msg if action.is_write else english  # a refused read is never shown: answered as absent, audited
    who = text("policy.who_organisation", bin=ctx.organization_bin) if ctx.role == SYSTEM and ctx.organization_bin \
        else (ctx.fhir_user or text("policy.who_role", role=ctx.role))
    wanted = "/".join(sorted(CONSENT_ACTIONS[action]))
    return text("policy.no_consent", patient=f"Patient/{patient_id}", who=who, wanted=wanted)
