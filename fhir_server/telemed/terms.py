"""The public offer (TM-03) and the informed consent (TM-07) a remote booking needs, read from resources.

* The **offer** is a Contract of type ``kz-contract-type#public-offer`` meeting the ``kz-public-offer``
  profile, published by the organisation (``author``). Its versions share ``url``; the **current** version of
  a series is the ``executable`` one with the latest ``issued``.
* The **acceptance** is an active Consent of the patient, category ``kz-consent-category#public-offer-
  acceptance``, whose ``policy.uri`` is the offer's ``url|version``.
* The **informed consent** is an active Consent of the patient, scope ``treatment``, category
  ``kz-consent-category#informed-consent``; its ``provision.period`` (if any) covers the booking, and its
  ``provision.code`` (if any) names the booked service.

Both Consents count only when given by the patient or a representative whose authority is verified (AC-09,
the policy's own reading: ``relationships.verified_representatives``). They are written like any Consent:
by the patient or representative, proposed by a medical worker (AC-04), or recorded by the organisation with
the patient's EDS (AC-08); revoked by ``status = inactive``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_server.fhirtime import seconds_range
from fhir_server.security.refs import reference_keys

KZ = "https://fhir.kzfhir.kz"
CONTRACT_TYPE = f"{KZ}/CodeSystem/kz-contract-type"
CONSENT_CATEGORY = f"{KZ}/CodeSystem/kz-consent-category"
OFFER_PROFILE = f"{KZ}/StructureDefinition/kz-public-offer"
ACCEPTANCE = "public-offer-acceptance"
INFORMED = "informed-consent"
SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
REMOTE_EXTENSIONS = (f"{KZ}/StructureDefinition/kz-telecom-channel", f"{KZ}/StructureDefinition/kz-remote-service-form")


def _codings(concept: Any) -> set[tuple[str, str]]:
    if not isinstance(concept, dict):
        return set()
    return {(str(c.get("system")), str(c.get("code"))) for c in concept.get("coding", []) or [] if isinstance(c, dict)}


def is_offer(resource: dict[str, Any]) -> bool:
    return resource.get("resourceType") == "Contract" and any(
        (CONTRACT_TYPE, "public-offer") in _codings(t) for t in [resource.get("type")])


@dataclass(frozen=True, slots=True)
class Offer:
    url: str
    version: str
    issued: str
    author: str | None
    reference: str

    @property
    def canonical(self) -> str:
        return f"{self.url}|{self.version}"


def _instant(value: Any) -> float | None:
    found = seconds_range(value)
    return None if found is None else found[0]


def current_offers(contracts: list[dict[str, Any]]) -> dict[str, Offer]:
    """url -> the current version of each offer series among the given Contracts."""
    best: dict[str, tuple[float, Offer]] = {}
    for c in contracts:
        if not is_offer(c) or c.get("status") != "executable":
            continue
        url, version, issued = c.get("url"), c.get("version"), _instant(c.get("issued"))
        if not isinstance(url, str) or not isinstance(version, str) or issued is None:
            continue
        author = (c.get("author") or {}).get("reference")
        offer = Offer(url, version, str(c["issued"]), author if isinstance(author, str) else None,
                      f"Contract/{c.get('id')}")
        if url not in best or issued > best[url][0]:
            best[url] = (issued, offer)
    return {url: offer for url, (_, offer) in best.items()}


def is_remote_booking(previous: dict[str, Any] | None, appointment: dict[str, Any]) -> bool:
    """The write books a remote service: it enters pending/booked now, with a telecom channel or remote form."""
    booking = ("pending", "booked", "arrived", "checked-in")
    if appointment.get("status") not in booking:
        return False
    if previous is not None and previous.get("status") in booking:
        return False
    extensions = appointment.get("extension", []) or []
    return any(isinstance(e, dict) and e.get("url") in REMOTE_EXTENSIONS for e in extensions)


def _given_by_owner(consent: dict[str, Any], patient_id: str, representatives: frozenset[str]) -> bool:
    if consent.get("status") != "active" or f"Patient/{patient_id}" not in reference_keys(consent.get("patient")):
        return False
    performers: set[str] = set()
    for performer in consent.get("performer", []) or []:
        performers |= reference_keys(performer)
    return not performers or bool(performers & ({f"Patient/{patient_id}"} | representatives))


def _category(consent: dict[str, Any], code: str) -> bool:
    return any((CONSENT_CATEGORY, code) in _codings(c) for c in consent.get("category", []) or [])


def accepted(consents: tuple[dict[str, Any], ...], patient_id: str, representatives: frozenset[str],
             offer: Offer) -> str | None:
    """The Consent recording the patient's acceptance of this offer version, if any."""
    for consent in consents:
        if _given_by_owner(consent, patient_id, representatives) and _category(consent, ACCEPTANCE) and any(
                isinstance(p, dict) and p.get("uri") == offer.canonical for p in consent.get("policy", []) or []):
            return f"Consent/{consent.get('id')}"
    return None


def informed(consents: tuple[dict[str, Any], ...], patient_id: str, representatives: frozenset[str],
             appointment: dict[str, Any], at: float) -> str | None:
    """The Consent recording the patient's informed consent covering this booking, if any."""
    services = set().union(*(_codings(s) for s in appointment.get("serviceType", []) or [])) if \
        appointment.get("serviceType") else set()
    for consent in consents:
        if not (_given_by_owner(consent, patient_id, representatives) and _category(consent, INFORMED)
                and (SCOPE, "treatment") in _codings(consent.get("scope"))):
            continue
        raw = consent.get("provision")
        provision: dict[str, Any] = raw if isinstance(raw, dict) else {}
        period = provision.get("period") or {}
        start, end = seconds_range(period.get("start")), seconds_range(period.get("end"))
        if (start is not None and start[0] > at) or (end is not None and end[1] < at):
            continue
        codes = set().union(*(_codings(c) for c in provision.get("code", []) or [])) if provision.get("code") else set()
        if codes and not codes & services:
            continue
        return f"Consent/{consent.get('id')}"
    return None
