"""Code systems and codes the BALP AuditEvents use (IHE BALP 1.1, FHIR R4 AuditEvent)."""

from __future__ import annotations

from typing import Any, Final

from fhir_server.security.refs import KZ_BASE

AUDIT_EVENT_TYPE: Final = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL_INTERACTION: Final = "http://hl7.org/fhir/restful-interaction"
DICOM: Final = "http://dicom.nema.org/resources/ontology/DCM"
PARTICIPATION_TYPE: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ROLE_CLASS: Final = "http://terminology.hl7.org/CodeSystem/v3-RoleClass"
ACT_REASON: Final = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ENTITY_TYPE: Final = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE: Final = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE: Final = "http://terminology.hl7.org/CodeSystem/security-source-type"
RESOURCE_TYPES: Final = "http://hl7.org/fhir/resource-types"
BALP_ENTITY_TYPE: Final = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
BALP_PROFILE: Final = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit."
#: The kzfhir role of the user agent (docs/security.md "Roles"); published with the KZ terminology.
KZ_SECURITY_ROLE: Final = f"{KZ_BASE}/CodeSystem/kz-security-role"

#: AuditEvent.outcome (R4 audit-event-outcome): success, minor failure (request refused or
#: failed authentication), serious failure (the server failed), major failure.
SUCCESS: Final = "0"
MINOR_FAILURE: Final = "4"
SERIOUS_FAILURE: Final = "8"
MAJOR_FAILURE: Final = "12"

#: restful-interaction code -> AuditEvent.action (BALP: read R, query E, create C, update U, delete D).
ACTION_OF: Final[dict[str, str]] = {
    "read": "R",
    "vread": "R",
    "history-instance": "R",
    "history-type": "R",
    "history-system": "R",
    "create": "C",
    "update": "U",
    "patch": "U",
    "delete": "D",
    "search-type": "E",
    "search-system": "E",
    "search": "E",
    "operation": "E",
    "batch": "E",
    "transaction": "E",
    "capabilities": "E",
}

#: BALP profile stems per AuditEvent.action for successful events (``Patient`` prefix when the
#: event names a patient).
PROFILE_OF: Final[dict[str, str]] = {"C": "Create", "R": "Read", "U": "Update", "D": "Delete", "E": "Query"}


def coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    """A Coding dict, without empty members."""
    value: dict[str, Any] = {"system": system, "code": code}
    if display:
        value["display"] = display
    return value
