"""Booking a remote service needs the current public offer accepted and informed consent given (TM-03, TM-07).

A change hook (``Services.change_hooks``) run inside the write unit as each version is stored, so the check
and the booking commit together and read the same data: Consents recorded earlier in the same unit (a
transaction's earlier entries) count. A refusal rolls the unit back and is a 422 OperationOutcome naming what
is missing, one issue per patient and kind, with the Consent to record. Switched on by
``KZFHIR_REMOTE_BOOKING_CONSENT`` (production: true).

The same hook keeps offers honest: a published offer's terms change only with a new version, so an
acceptance always names the terms that were accepted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from fhir_server.errors import FhirError
from fhir_server.search.in_unit import find_in_unit
from fhir_server.security.policy.relationships import verified_representatives
from fhir_server.security.tx_facts import TxFacts
from fhir_server.storage.protocols import StoredResource, TxView
from fhir_server.telemed.terms import (
    ACCEPTANCE,
    CONSENT_CATEGORY,
    INFORMED,
    OFFER_PROFILE,
    Offer,
    accepted,
    current_offers,
    informed,
    is_offer,
    is_remote_booking,
)
from fhir_server.validation.issues import Issue

if TYPE_CHECKING:
    from fhir_server.validation.on_write import ProfileValidation

_TERMS = ("term", "title", "subtitle", "legallyBindingAttachment", "legallyBindingReference", "friendly", "legal",
          "rule", "applies", "author")
_ORGANISATION_OF = {"PractitionerRole": "organization", "HealthcareService": "providedBy",
                    "Location": "managingOrganization"}


def offer_issues(profiles: ProfileValidation | None) -> Callable[[dict[str, Any], str], list[Issue]]:
    """A ``Services.extra_validators`` entry: a Contract typed as a public offer meets ``kz-public-offer``."""

    def check(resource: dict[str, Any], mode: str) -> list[Issue]:
        if not is_offer(resource) or profiles is None:
            return []
        return [i for i in profiles.validate(resource, [OFFER_PROFILE], level="strict") if i.is_error]

    return check


def _organisations(view: TxView, appointment: dict[str, Any]) -> set[str]:
    """The organisations the booking names through its participants (a role, a service, a location)."""
    found: set[str] = set()
    for p in appointment.get("participant", []) or []:
        ref = (p.get("actor") or {}).get("reference") if isinstance(p, dict) else None
        rtype, _, rid = str(ref).partition("/")
        element = _ORGANISATION_OF.get(rtype)
        stored = view.current(rtype, rid) if element and rid else None
        if element and stored is not None and stored.data is not None:
            org = (orjson.loads(stored.data).get(element) or {}).get("reference")
            if isinstance(org, str):
                found.add(org)
    return found


def _patients(appointment: dict[str, Any]) -> list[tuple[int, str]]:
    out = []
    for i, p in enumerate(appointment.get("participant", []) or []):
        ref = (p.get("actor") or {}).get("reference") if isinstance(p, dict) else None
        if isinstance(ref, str) and ref.startswith("Patient/") and p.get("status") != "declined":
            out.append((i, ref.split("/", 1)[1]))
    return out


def missing_terms(view: TxView, appointment: dict[str, Any]) -> list[Issue]:
    """What the booking lacks: the offer itself, its acceptance, the informed consent."""
    offers = current_offers(find_in_unit(view, "Contract", [("status", "executable")], 500))
    organisations = _organisations(view, appointment)
    candidates = [o for o in offers.values() if not organisations or o.author in organisations]
    if not candidates:
        by = f" by {', '.join(sorted(organisations))}" if organisations else ""
        return [Issue("error", "business-rule", f"no public offer of remote services is published{by}: the "
                      "organisation publishes one (a Contract meeting kz-public-offer) before remote services are "
                      "booked (TM-03)", "Appointment")]
    if len(candidates) > 1:
        return [Issue("error", "business-rule", "several organisations' public offers apply: name the providing "
                      "organisation by a PractitionerRole, HealthcareService or Location participant (TM-03)",
                      "Appointment.participant")]
    offer: Offer = candidates[0]
    facts, at, issues = TxFacts(view), time.time(), []
    for index, pid in _patients(appointment):
        patient_facts = facts.get(pid)
        representatives = verified_representatives(patient_facts, at)
        where = f"Appointment.participant[{index}].actor"
        if accepted(patient_facts.consents, pid, representatives, offer) is None:
            issues.append(Issue("error", "business-rule", f"Patient/{pid} has not accepted the current public offer "
                                f"({offer.reference}, version {offer.version}): an active Consent of the patient "
                                f"with category {CONSENT_CATEGORY}#{ACCEPTANCE} and policy.uri "
                                f"'{offer.canonical}' (TM-03)", where))
        if informed(patient_facts.consents, pid, representatives, appointment, at) is None:
            issues.append(Issue("error", "business-rule", f"Patient/{pid} has given no informed consent to this care: "
                                f"an active Consent of the patient, scope treatment, category "
                                f"{CONSENT_CATEGORY}#{INFORMED}, covering now and the booked service (TM-07)", where))
    return issues


class BookingTerms:
    """The change hook; the booking rule applies when ``enforce`` is on, the offer-version rule always."""

    def __init__(self, enforce: bool) -> None:
        self.enforce = enforce

    def __call__(self, view: TxView, services: Any, previous: bytes | None, resource: dict[str, Any],
                 stored: StoredResource) -> None:
        rtype = resource.get("resourceType")
        before = orjson.loads(previous) if previous else None
        if rtype == "Contract" and before is not None and is_offer(before) and is_offer(resource):
            if before.get("version") == resource.get("version") and any(
                    before.get(k) != resource.get(k) for k in _TERMS):
                raise FhirError("unprocessable", "a published offer's terms change only with a new version: "
                                "acceptances name the version that was accepted (TM-03)", code="business-rule",
                                expression="Contract.version")
        elif rtype == "Appointment" and self.enforce and is_remote_booking(before, resource):
            issues = missing_terms(view, resource)
            if issues:
                raise FhirError("unprocessable", issues[0].diagnostics, issues=issues)
