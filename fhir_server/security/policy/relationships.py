"""Who the caller is *for this patient*: identities from care relationships, and representatives.

Care relationships (TM-15, AC-01) do not grant anything on their own. They widen the set of
identities a Consent ``provision.actor`` can name: a patient who consents to "my care team"
writes ``actor.reference = CareTeam/x``, and every active member of that team matches.

* CareTeam (status active, period current, subject = the patient): each participant whose
  ``member`` is the caller and whose ``period`` is current gets ``CareTeam/{id}``.
* EpisodeOfCare (status active, period current, patient = the patient): its ``careManager``
  gets the identities of the episode's ``team`` CareTeams.
* ServiceRequest (status active, subject = the patient, occurrence period current) — e.g. the
  remote-monitoring order of TM-15: its ``requester`` (the attending doctor) and ``performer``
  entries that are the caller get the identities of the CareTeams named as performers (the
  monitoring team).
* The caller's organisation (token ``bin``) matches an Organization actor given by BIN
  identifier; the caller's ``fhirUser`` matches itself.

Representative authority (AC-09) is recorded on the RelatedPerson with the complex extension
``REPRESENTATIVE_AUTHORITY_URL``: ``verifiedBy`` (who checked it, as the KZ IG defines) or
``verified`` (valueBoolean true) — the authority was checked —, ``basis`` (valueCoding: legal
representative, guardian, power of attorney ...), ``period`` (valuePeriod, must be current if
present) and optionally ``document``. The RelatedPerson
itself must be active, current and name the patient.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fhir_server.security.context import RequestContext
from fhir_server.security.fhirtime import period_covers
from fhir_server.security.policy.facts import PatientFacts
from fhir_server.security.refs import KZ_BASE, bin_key, reference_keys

REPRESENTATIVE_AUTHORITY_URL = f"{KZ_BASE}/StructureDefinition/kz-representative-authority"


def _refs(values: Any) -> set[str]:
    found: set[str] = set()
    for value in values if isinstance(values, list) else [values]:
        found |= reference_keys(value)
    return found


def _current(resource: dict[str, Any], status: str, patient_field: str, patient_id: str, at: float) -> bool:
    return (
        resource.get("status") == status
        and f"Patient/{patient_id}" in reference_keys(resource.get(patient_field))
        and period_covers(resource.get("period"), at)
    )


def _care_team_ids(facts: PatientFacts, user: str, at: float) -> Iterator[str]:
    for team in facts.care_relationships:
        if team.get("resourceType") != "CareTeam" or not _current(team, "active", "subject", facts.patient_id, at):
            continue
        for participant in team.get("participant", []) or []:
            if user in reference_keys(participant.get("member")) and period_covers(participant.get("period"), at):
                yield f"CareTeam/{team.get('id')}"


def _linked_team_ids(facts: PatientFacts, user: str, at: float) -> Iterator[str]:
    for item in facts.care_relationships:
        kind = item.get("resourceType")
        if kind == "EpisodeOfCare" and _current(item, "active", "patient", facts.patient_id, at):
            if user in reference_keys(item.get("careManager")):
                yield from (ref for ref in _refs(item.get("team")) if ref.startswith("CareTeam/"))
        elif kind == "ServiceRequest" and _current(item, "active", "subject", facts.patient_id, at):
            if not period_covers(item.get("occurrencePeriod"), at):
                continue
            performers = _refs(item.get("performer"))
            if user in performers or user in reference_keys(item.get("requester")):
                yield from (ref for ref in performers if ref.startswith("CareTeam/"))


def caller_identities(ctx: RequestContext, facts: PatientFacts, at: float) -> frozenset[str]:
    """Every key a Consent actor may use to name the caller, for this patient, at this instant."""
    identities: set[str] = set()
    if ctx.organization_bin:
        identities.add(bin_key(ctx.organization_bin))
    if ctx.fhir_user:
        identities.add(ctx.fhir_user)
        identities.update(_care_team_ids(facts, ctx.fhir_user, at))
        identities.update(_linked_team_ids(facts, ctx.fhir_user, at))
    return frozenset(identities)


def _authority_holds(extension: dict[str, Any], at: float) -> bool:
    parts = {part.get("url"): part for part in extension.get("extension", []) or [] if isinstance(part, dict)}
    # verified: a verifier is recorded (the IG's ``verifiedBy``) or ``verified`` is true (AC-09)
    verified = parts.get("verified", {}).get("valueBoolean") is True or "verifiedBy" in parts
    period = parts.get("period", {}).get("valuePeriod")
    return verified and period_covers(period, at)


def verified_representatives(facts: PatientFacts, at: float) -> frozenset[str]:
    """``RelatedPerson/{id}`` of everyone with recorded, verified, current authority (AC-09)."""
    found: set[str] = set()
    for person in facts.representatives:
        if person.get("resourceType") != "RelatedPerson" or person.get("active") is False:
            continue
        if f"Patient/{facts.patient_id}" not in reference_keys(person.get("patient")):
            continue
        if not period_covers(person.get("period"), at):
            continue
        extensions = [e for e in person.get("extension", []) or [] if isinstance(e, dict)]
        if any(e.get("url") == REPRESENTATIVE_AUTHORITY_URL and _authority_holds(e, at) for e in extensions):
            found.add(f"RelatedPerson/{person.get('id')}")
    return frozenset(found)
