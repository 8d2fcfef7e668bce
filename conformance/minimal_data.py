"""The minimal data sets the telemedicine rules require (requirements.md "Minimal data set"), item by
item, so a report can say *which* item a vendor's record lacks (the KZ profiles say only that it is
invalid). Pure functions: the people a record names are passed in, already read.

MD-B (booking): 1 patient IIN and full name, 2 service code and name, 3 catchment area or the doctor's
full name, 4 date and time. MD-D (delivery): 1 form of the service, 2 telecom means, 3 patient IIN and
full name, 4 service code and name, 5 doctor's IIN and full name, 6 diagnosis with kind and type;
items 7-13 have no KZ profile element yet (docs/kz-ig.md "Not done") and are not checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conformance.examples import IIN_SYSTEM, identifier_value
from profiles import KZ_BASE
from profiles.identifiers import is_valid_iin

__all__ = ["MD_D_UNCHECKED", "md_b_gaps", "md_d_gaps", "person_gaps"]

_EXT = f"{KZ_BASE}/StructureDefinition/"
MD_D_UNCHECKED = "items 7-13 (note, conclusion, plan, referrals, prescriptions, sick leave, MSE) are not profiled"


def _has_ext(resource: Mapping[str, Any], name: str) -> bool:
    return any(isinstance(e, dict) and e.get("url") == _EXT + name for e in resource.get("extension") or [])


def _full_name(resource: Mapping[str, Any]) -> bool:
    names = [n for n in resource.get("name") or [] if isinstance(n, dict)]
    return any(n.get("family") and n.get("given") for n in names)


def person_gaps(person: Mapping[str, Any] | None, role: str) -> list[str]:
    """What a Patient/Practitioner record lacks for the data sets: a valid IIN and a full name."""
    if person is None:
        return [f"the {role} record cannot be read"]
    gaps = []
    iin = identifier_value(dict(person), IIN_SYSTEM)
    if not iin or not is_valid_iin(iin):
        gaps.append(f"the {role} has no valid IIN")
    if not _full_name(person):
        gaps.append(f"the {role} has no full name (family and given)")
    return gaps


def _service_named(resource: Mapping[str, Any]) -> bool:
    """A service code with its name: a coded serviceType whose coding has a display or whose concept
    has a text. (R4: Appointment.serviceType is a list, Encounter.serviceType a single concept.)"""
    value = resource.get("serviceType")
    concepts = [s for s in (value if isinstance(value, list) else [value]) if isinstance(s, dict)]
    return any(isinstance(c, dict) and c.get("code") and (c.get("display") or concept.get("text"))
               for concept in concepts for c in concept.get("coding") or [])


def _ref(node: Any) -> str:
    return str(node.get("reference") or "") if isinstance(node, dict) else ""


def md_b_gaps(appointment: Mapping[str, Any], people: Mapping[str, Mapping[str, Any] | None]) -> list[str]:
    actors = [p.get("actor") for p in appointment.get("participant") or [] if isinstance(p, dict)]
    patients = [a for a in actors if _ref(a).startswith("Patient/")]
    doctors = [a for a in actors if _ref(a).startswith(("Practitioner/", "PractitionerRole/"))]
    gaps = []
    if not patients:
        gaps.append("MD-B 1: no patient participant")
    else:
        gaps += [f"MD-B 1: {g}" for g in person_gaps(people.get(_ref(patients[0])), "patient")]
    if not _service_named(appointment):
        gaps.append("MD-B 2: no service code with its name (serviceType)")
    named_doctor = any(a.get("display") or not person_gaps(people.get(_ref(a)), "doctor") for a in doctors
                       if isinstance(a, dict))
    if not _has_ext(appointment, "kz-catchment-area") and not named_doctor:
        gaps.append("MD-B 3: neither a catchment area nor the doctor's full name")
    if not appointment.get("start"):
        gaps.append("MD-B 4: no date and time (start)")
    return gaps


def md_d_gaps(encounter: Mapping[str, Any], people: Mapping[str, Mapping[str, Any] | None]) -> list[str]:
    gaps = []
    if not _has_ext(encounter, "kz-remote-service-form"):
        gaps.append("MD-D 1: no form of the remote service")
    if not _has_ext(encounter, "kz-telecom-channel"):
        gaps.append("MD-D 2: no telecommunication means")
    gaps += [f"MD-D 3: {g}" for g in person_gaps(people.get(_ref(encounter.get("subject"))), "patient")]
    if not _service_named(encounter):
        gaps.append("MD-D 4: no service code with its name (serviceType)")
    doctors = [_ref(p.get("individual")) for p in encounter.get("participant") or [] if isinstance(p, dict)]
    doctors = [d for d in doctors if d.startswith("Practitioner/")]
    if not doctors:
        gaps.append("MD-D 5: no doctor (participant.individual)")
    else:
        gaps += [f"MD-D 5: {g}" for g in person_gaps(people.get(doctors[0]), "doctor")]
    diagnoses = [d for d in encounter.get("diagnosis") or [] if isinstance(d, dict)]
    if not diagnoses or not all(_has_ext(d, "kz-diagnosis-kind") and _has_ext(d, "kz-diagnosis-type")
                                for d in diagnoses):
        gaps.append("MD-D 6: no diagnosis with its kind and type")
    return gaps
