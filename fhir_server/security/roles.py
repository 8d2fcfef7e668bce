"""The roles a token can carry (docs/security.md, "Roles") and what FHIR identity each one needs."""

from __future__ import annotations

from typing import Final

PATIENT: Final = "patient"
RELATED_PERSON: Final = "related-person"
PRACTITIONER: Final = "practitioner"
SYSTEM: Final = "system"
AUDITOR: Final = "auditor"
ADMIN: Final = "admin"
LEGAL_EXCEPTION: Final = "legal-exception"

ROLES: Final = frozenset({PATIENT, RELATED_PERSON, PRACTITIONER, SYSTEM, AUDITOR, ADMIN, LEGAL_EXCEPTION})

#: Roles that must be bound to a FHIR identity of one of these types via the ``fhirUser`` claim.
FHIR_USER_TYPES: Final[dict[str, frozenset[str]]] = {
    PATIENT: frozenset({"Patient"}),
    RELATED_PERSON: frozenset({"RelatedPerson"}),
    PRACTITIONER: frozenset({"Practitioner", "PractitionerRole"}),
}

#: v3 PurposeOfUse (http://terminology.hl7.org/CodeSystem/v3-ActReason) assumed when a request
#: names none: the purpose a role's normal work has. Consent provisions with ``purpose`` compare
#: against the request purpose, so the default must be the honest one for the role.
DEFAULT_PURPOSE: Final[dict[str, str]] = {
    PATIENT: "PATRQT",
    RELATED_PERSON: "FAMRQT",
    PRACTITIONER: "TREAT",
    SYSTEM: "HOPERAT",
    AUDITOR: "HOPERAT",
    ADMIN: "HOPERAT",
    LEGAL_EXCEPTION: "HLEGAL",
}
