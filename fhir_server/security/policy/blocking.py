"""Blocking (AC-26, Law art. 30: "processing" includes *blocking*): a reversible state that hides named
records of a patient (and the Provenance naming them) from everyone but the patient (and a verified
representative acting for them).

A block is recorded as an R4 ``Flag`` in the patient's compartment, coded
``https://fhir.kzfhir.kz/CodeSystem/kz-processing|blocked``, naming each blocked record with the extension
``BLOCKED_RESOURCE_URL`` (valueReference), the decision's reason in ``code.text`` and, optionally, the
decided data-subject request in ``BLOCK_BASIS_URL``. ``status = active`` with a current ``period`` means
blocked; lifting the block (``$unblock``) makes it ``inactive`` and ends the period: nothing is lost, so
the block is reversible (unlike destruction, AC-22).

Block Flags are patient facts (``PatientFacts.blocks``), so the rule applies wherever the engine decides —
read, vread, each history version, search and its includes, Bundle entries, ``$everything``,
``$export``, subscriptions and the compiled read by id — and the refusal is audited like any other
(hidden means absent). Only an administrator writes a block Flag (the ``$block`` / ``$unblock``
operations); it is shown to the patient and to administrators; auditors follow blocks and every refused
access through the audit trail. Oversight roles never read clinical content, blocked or not.
"""

from __future__ import annotations

from typing import Any

from fhir_server.security.fhirtime import period_covers
from fhir_server.security.policy.decision import Action, Decision, Verdict
from fhir_server.security.policy.facts import PatientFacts
from fhir_server.security.refs import KZ_BASE, relative_ref
from fhir_server.security.roles import ADMIN

PROCESSING_SYSTEM = f"{KZ_BASE}/CodeSystem/kz-processing"
BLOCKED_CODE = "blocked"
BLOCKED_RESOURCE_URL = f"{KZ_BASE}/StructureDefinition/kz-blocked-resource"
BLOCK_BASIS_URL = f"{KZ_BASE}/StructureDefinition/kz-block-basis"
#: grounds on which a blocked record stays visible: the patient, or a verified representative for them
OWNER_GROUNDS = frozenset({"own-compartment", "representative", "self"})
BLOCKED_REASON = "the record is blocked from processing (AC-26)"


def is_block(resource: dict[str, Any]) -> bool:
    """Is this resource a block record (a Flag with the blocking code)?"""
    if resource.get("resourceType") != "Flag":
        return False
    codings = (resource.get("code") or {}).get("coding", []) or []
    return any(isinstance(c, dict) and c.get("system") == PROCESSING_SYSTEM and c.get("code") == BLOCKED_CODE
               for c in codings)


def blocked_references(flag: dict[str, Any]) -> set[str]:
    """``Type/id`` of every record a block Flag names."""
    out: set[str] = set()
    for extension in flag.get("extension", []) or []:
        if isinstance(extension, dict) and extension.get("url") == BLOCKED_RESOURCE_URL:
            ref = relative_ref((extension.get("valueReference") or {}).get("reference"))
            if ref is not None:
                out.add(ref)
    return out


def block_in_force(flag: dict[str, Any], patient_id: str, at: float) -> bool:
    """An active block of this patient whose period covers ``at``."""
    subject = relative_ref((flag.get("subject") or {}).get("reference"))
    return is_block(flag) and flag.get("status") == "active" and subject == f"Patient/{patient_id}" \
        and period_covers(flag.get("period"), at)


def blocked_for(facts: PatientFacts, at: float) -> frozenset[str]:
    """The records of this patient blocked at ``at``."""
    out: set[str] = set()
    for flag in facts.blocks:
        if block_in_force(flag, facts.patient_id, at):
            out |= blocked_references(flag)
    return frozenset(out)


def has_blocks(facts: PatientFacts) -> bool:
    """Does any block record exist for the patient? (Decisions are then made per resource.)"""
    return any(is_block(flag) for flag in facts.blocks)


def is_blocked(resource: dict[str, Any], facts: list[PatientFacts], at: float) -> bool:
    """Is the resource blocked by a block of any patient it belongs to? A Provenance of a blocked record is
    blocked with it: it names the record and carries its signature (hidden means absent)."""
    refs = {f"{resource.get('resourceType')}/{resource.get('id')}"}
    if resource.get("resourceType") == "Provenance":
        refs |= {ref for target in resource.get("target", []) or [] if isinstance(target, dict)
                 for ref in [relative_ref(target.get("reference"))] if ref is not None}
    return any(refs & blocked_for(item, at) for item in facts if item.blocks)


def block_record_verdict(role: str | None, action: Action, resource: dict[str, Any]) -> Verdict | None:
    """Who may write and read a block Flag: administrators write (never delete) and read it; nobody else
    writes one; others read it only on the owner grounds (``OWNER_GROUNDS``, applied by the engine).
    None: decide by the patient rules, then keep owner grounds only."""
    if role == ADMIN:
        if action is Action.DELETE:
            return Verdict.reject("a block is lifted ($unblock), never deleted (AC-26)")
        if action.is_write and not (resource.get("code") or {}).get("text"):
            return Verdict.reject("a block states the decision's reason in Flag.code.text (AC-26)")
        return Verdict(Decision.AUTHORIZED, "administrator recording or reading a block (AC-26)", ("blocking",))
    if action.is_write:
        return Verdict.reject("blocks are set and lifted by administrators ($block, $unblock; AC-26)")
    return None
