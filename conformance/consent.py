"""The access Consent the kit records for each patient it creates, when the server's policy needs one.

Under the access-rights rules (AC-01, AC-12) a secured server lets a client see a patient's data only
when a Consent of that patient grants it. The kit therefore records, as the MIS would after the patient
signs the written form (AC-08), an active KZ Consent (profile kz-consent, content per AC-07) whose
provision permits the kit's own identity to collect, access, use and correct the data it creates.
The grantee is taken from the token's claims (``bin``/``organization`` and ``fhirUser``), read without
verifying the signature: they only pick whom the Consent names; the server decides what they are worth.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from conformance.examples import BIN_SYSTEM

__all__ = ["CONSENTED_TYPES", "access_consent", "grantees", "unverified_claims"]

# Every patient-data type the kit writes (the Consent's provision.class, "list of data covered", AC-07).
CONSENTED_TYPES = (
    "Patient", "Consent", "Appointment", "Encounter", "Observation", "ServiceRequest", "MedicationRequest",
    "Condition", "RelatedPerson", "DocumentReference", "AuditEvent", "Provenance",
)
_ACTIONS = ("collect", "access", "use", "correct")  # consentaction: create, read, read, update/delete
# Treatment, and the operational purposes MIS back-end clients run under (v3 PurposeOfUse).
_PURPOSES = ("TREAT", "HOPERAT", "HSYSADMIN")
_V3_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
_V3_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
_CONSENT_ACTION = "http://terminology.hl7.org/CodeSystem/consentaction"


def unverified_claims(token: str | None) -> dict[str, Any]:
    """The JWT payload, or {} when the token is not a JWT. Never used to trust anything."""
    parts = (token or "").split(".")
    if len(parts) != 3:
        return {}
    padded = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


def grantees(claims: dict[str, Any], fallback_bin: str | None) -> list[dict[str, Any]]:
    """Consent.provision.actor entries naming the caller: its organisation by BIN, its fhirUser."""
    actors: list[dict[str, Any]] = []
    org_bin = claims.get("bin") or claims.get("organization") or fallback_bin
    if isinstance(org_bin, str) and org_bin:
        actors.append({"reference": {"identifier": {"system": BIN_SYSTEM, "value": org_bin}}})
    if isinstance(claims.get("fhirUser"), str):
        actors.append({"reference": {"reference": claims["fhirUser"]}})
    role = {"coding": [{"system": _V3_PARTICIPATION, "code": "IRCP"}]}  # information recipient
    return [{"role": role, **actor} for actor in actors]


def access_consent(
    template: dict[str, Any], patient_ref: str, actors: list[dict[str, Any]]
) -> dict[str, Any]:
    """Fill the KZ Consent example (already re-targeted at this server) for ``patient_ref``."""
    now = datetime.now(UTC)
    consent = {key: value for key, value in template.items() if key not in ("id", "text")}
    consent.update({
        "status": "active",
        "patient": {"reference": patient_ref},
        "performer": [{"reference": patient_ref}],  # the patient consents personally (AC-09 n/a)
        "dateTime": now.isoformat(timespec="seconds"),
        # The signed form itself (AC-06, AC-08), attached rather than referenced.
        "sourceAttachment": {"contentType": "application/pdf", "title": "Signed consent form",
                             "creation": now.isoformat(timespec="seconds")},
    })
    consent["provision"] = {
        "type": "permit",
        "period": {"start": (now - timedelta(days=1)).date().isoformat(),
                   "end": (now + timedelta(days=30)).date().isoformat()},
        "actor": actors,
        "action": [{"coding": [{"system": _CONSENT_ACTION, "code": code}]} for code in _ACTIONS],
        "purpose": [{"system": _V3_REASON, "code": code} for code in _PURPOSES],
        "class": [{"system": "http://hl7.org/fhir/resource-types", "code": t} for t in CONSENTED_TYPES],
    }
    return consent
