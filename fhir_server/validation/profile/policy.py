"""Which profiles a resource must meet: its own ``meta.profile`` plus those a deployment makes mandatory."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["KZ_BASE", "KZ_PROFILES", "ProfilePolicy"]

KZ_BASE = "https://fhir.kzfhir.kz"

# The ten KZ profiles made mandatory by the national strict mode (issue part 4; docs/kz-ig.md).
KZ_PROFILES: dict[str, str] = {
    "Patient": f"{KZ_BASE}/StructureDefinition/kz-patient",
    "Practitioner": f"{KZ_BASE}/StructureDefinition/kz-practitioner",
    "Organization": f"{KZ_BASE}/StructureDefinition/kz-organization",
    "Appointment": f"{KZ_BASE}/StructureDefinition/kz-appointment",
    "Encounter": f"{KZ_BASE}/StructureDefinition/kz-encounter-remote",
    "Observation": f"{KZ_BASE}/StructureDefinition/kz-observation-vitals",
    "Consent": f"{KZ_BASE}/StructureDefinition/kz-consent",
    "AuditEvent": f"{KZ_BASE}/StructureDefinition/kz-auditevent",
    "ServiceRequest": f"{KZ_BASE}/StructureDefinition/kz-servicerequest",
    "MedicationRequest": f"{KZ_BASE}/StructureDefinition/kz-medicationrequest",
}


@dataclass(frozen=True, slots=True)
class ProfilePolicy:
    """``required``: resource type → profile URLs every instance must meet, declared or not.
    ``relaxed_iin``: accept IINs/BINs that are 12 digits but fail date/checksum rules (NCA test PKI).
    The default policy is a plain R4 server: only declared ``meta.profile`` entries are checked.
    """

    required: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    relaxed_iin: bool = False

    @classmethod
    def national(cls, *, relaxed_iin: bool = False) -> ProfilePolicy:
        """National strict mode (``--require-kz-profiles`` / ``KZFHIR_REQUIRE_KZ_PROFILES``)."""
        return cls({t: (url,) for t, url in KZ_PROFILES.items()}, relaxed_iin)

    def profiles_for(self, resource: dict[str, Any]) -> list[str]:
        """Declared profiles first, then mandatory ones, without duplicates (version suffixes kept)."""
        declared = resource.get("meta", {}).get("profile", [])
        mandatory = self.required.get(str(resource.get("resourceType")), ())
        return list(dict.fromkeys([*declared, *mandatory]))
