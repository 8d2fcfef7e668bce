"""R4 Consent evaluation: which of a patient's Consents count, and what their provisions say.

Reading of the R4 Consent resource (§6.2.1) applied here, and documented in docs/security.md:

* Only ``status = active`` Consents of scope ``patient-privacy`` or ``research`` count
  (``treatment`` and ``adr`` consents do not govern access to data). Revocation is
  ``status = inactive``; expiry is the root ``provision.period``; both apply on the next request.
* A Consent counts only if its performer (who consented) is the patient or a representative whose
  authority is recorded and verified (AC-09); no performer means the patient.
* Provisions nest: a nested provision is an exception to its parent and is considered only when
  the parent's conditions match. The most specific matching provision decides; when several
  matching siblings disagree, ``deny`` wins.
* ``provision.type`` is not allowed on the root in R4: the root's conditions scope the Consent
  and ``policyRule`` gives its base — OPTOUT is a deny, anything else grants nothing by itself, so
  access always comes from an explicit ``permit`` (AC-10, AC-12). A root ``type`` is honoured if
  present. A nested provision without a ``type`` is malformed and read as ``deny``.
* Across Consents of the same patient a ``deny`` overrides any ``permit``.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import Any

from fhir_server.security.policy.conditions import AccessRequest, provision_matches
from fhir_server.security.refs import reference_keys

ACCESS_SCOPES = frozenset({"patient-privacy", "research"})
OPT_OUT_RULES = frozenset({"OPTOUT", "OPTOUTE"})


class Ruling(Enum):
    PERMIT = "permit"
    DENY = "deny"


def _codes(concept: Any) -> set[str]:
    if not isinstance(concept, dict):
        return set()
    codings = concept.get("coding", [])
    return {c["code"] for c in codings if isinstance(c, dict) and isinstance(c.get("code"), str)}


def consent_counts(consent: dict[str, Any], patient_id: str, representatives: frozenset[str]) -> bool:
    """Does this Consent govern access to the patient's data right now (status, scope, who signed)?"""
    if consent.get("resourceType") != "Consent" or consent.get("status") != "active":
        return False
    if not _codes(consent.get("scope")) & ACCESS_SCOPES:
        return False
    if f"Patient/{patient_id}" not in reference_keys(consent.get("patient")):
        return False
    performers: set[str] = set()
    for performer in consent.get("performer", []) or []:
        performers |= reference_keys(performer)
    return not performers or bool(performers & ({f"Patient/{patient_id}"} | representatives))


def _rule(ruling: str | None) -> Ruling | None:
    return {"permit": Ruling.PERMIT, "deny": Ruling.DENY}.get(ruling or "")


def _decide(provision: dict[str, Any], request: AccessRequest, inherited: Ruling | None) -> Ruling | None:
    if not provision_matches(provision, request):
        return None
    own = _rule(provision.get("type")) or inherited
    found = {
        ruling
        for child in provision.get("provision", []) or []
        if isinstance(child, dict) and (ruling := _decide(child, request, Ruling.DENY)) is not None
    }
    if Ruling.DENY in found:
        return Ruling.DENY
    if Ruling.PERMIT in found:
        return Ruling.PERMIT
    return own


def evaluate_consent(consent: dict[str, Any], request: AccessRequest) -> Ruling | None:
    """What one (counting) Consent says about the request: PERMIT, DENY or nothing."""
    base = Ruling.DENY if _codes(consent.get("policyRule")) & OPT_OUT_RULES else None
    root = consent.get("provision")
    if not isinstance(root, dict):
        return base
    return _decide(root, request, base)


def evaluate_consents(
    consents: Iterable[dict[str, Any]],
    request: AccessRequest,
    patient_id: str,
    representatives: frozenset[str],
) -> tuple[Ruling | None, tuple[str, ...]]:
    """Combine the patient's Consents: any DENY wins; else PERMIT with the granting Consents."""
    permits: list[str] = []
    for consent in consents:
        if not consent_counts(consent, patient_id, representatives):
            continue
        ruling = evaluate_consent(consent, request)
        if ruling is Ruling.DENY:
            return Ruling.DENY, (f"Consent/{consent.get('id')}",)
        if ruling is Ruling.PERMIT:
            permits.append(f"Consent/{consent.get('id')}")
    return (Ruling.PERMIT, tuple(permits)) if permits else (None, ())
