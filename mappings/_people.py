"""MD-D 3 (patient), MD-D 5 (doctor) and the providing organisation (BIN, MO code)."""

from __future__ import annotations

from mappings._build import Build
from mappings._fhir import Cursor
from mappings.checks import check_bin, check_iin
from mappings.codes import BIN_SYSTEM, EXT_PATRONYMIC, IIN_SYSTEM, MO_CODE_SYSTEM
from mappings.model import Person, Practitioner, Provider

_PRIMARY_PERFORMER = "PPRF"  # v3-ParticipationType, R4 Encounter.participant.type


def _name(resource: Cursor) -> Cursor | None:
    """The official name (R4 HumanName.use), else the first name with a family."""
    names = [n for n in resource.children("name") if n.child("family") is not None]
    return next((n for n in names if n.node.get("use") == "official"), names[0] if names else None)


def person(b: Build, key: str, resource: Cursor, item: int, what: str) -> Person | None:
    """IIN and full name (surname, name, patronymic if any) of a KZ Patient or Practitioner."""
    iin_node = resource.identifier(IIN_SYSTEM)
    name = _name(resource)
    if iin_node is None or not isinstance(iin_node.node, str):
        b.missing(item, f"{resource.reference} has no identifier with system {IIN_SYSTEM}")
        return None
    if name is None:
        b.missing(item, f"{resource.reference} has no name with a family name")
        return None
    iin = str(b.take(f"{key}.iin", iin_node))
    b.issues.extend(check_iin(iin, iin_node.path, f"MD-D {item} {what} IIN", relaxed=b.relaxed_iin))
    family = b.text(f"{key}.family", name.child("family")) or ""
    givens = name.children("given")
    given = b.text(f"{key}.given", givens[0]) if givens else None
    patronymic = b.text(f"{key}.patronymic", name.ext_value(EXT_PATRONYMIC, "String"))
    if patronymic is None and len(givens) > 1 and isinstance(givens[1].node, str):
        # Without the kz-patronymic extension a second given name is the patronymic (KZ naming practice).
        patronymic = str(b.take(f"{key}.patronymic", givens[1], "second given name read as patronymic"))
    return Person(resource.reference, iin, family, given, patronymic)


def patient(b: Build, encounter: Cursor) -> Person | None:
    resource = b.resources.resolve(encounter.child("subject"))
    if resource is None or resource.resource_type != "Patient":
        b.missing(3, "Encounter.subject does not resolve to a Patient in the input")
        return None
    return person(b, "patient", resource, 3, "patient")


def _performer(b: Build, encounter: Cursor) -> Cursor | None:
    """The primary performer if typed, else the first participant that is a Practitioner(Role)."""
    found: list[tuple[bool, Cursor]] = []
    for participant in encounter.children("participant"):
        target = b.resources.resolve(participant.child("individual"))
        if target is not None and target.resource_type in ("Practitioner", "PractitionerRole"):
            codes = {c.node.get("code") for t in participant.children("type") for c in t.children("coding")}
            found.append((_PRIMARY_PERFORMER in codes, target))
    return next((t for primary, t in found if primary), found[0][1] if found else None)


def practitioner(b: Build, encounter: Cursor) -> Practitioner | None:
    target = _performer(b, encounter)
    role: Cursor | None = None
    if target is not None and target.resource_type == "PractitionerRole":
        role, target = target, b.resources.resolve(target.child("practitioner"))
        b.use(role)
    if target is None or target.resource_type != "Practitioner":
        b.missing(5, "no Encounter.participant.individual resolves to a Practitioner (or its role) in the input")
        return None
    person_ = person(b, "practitioner.person", target, 5, "doctor")
    if person_ is None:
        return None
    specialty_cc = role.child("specialty") if role is not None else None
    if specialty_cc is None:
        specialty_cc = target.child("qualification", "code")
    specialty = b.concept("practitioner.specialty", specialty_cc, "doctor's specialty")
    return Practitioner(person_, specialty, role.reference if role is not None else None)


def provider(b: Build, encounter: Cursor) -> Provider | None:
    """Encounter.serviceProvider, else the organisation of the performing PractitionerRole."""
    org = b.resources.resolve(encounter.child("serviceProvider"))
    if org is None:
        role = _performer(b, encounter)
        if role is not None and role.resource_type == "PractitionerRole":
            org = b.resources.resolve(role.child("organization"))
    if org is None or org.resource_type != "Organization":
        b.warn("no providing Organization: Encounter.serviceProvider (or PractitionerRole.organization) does "
               "not resolve in the input; the payment claim line needs its BIN", "Encounter.serviceProvider")
        return None
    bin_node = org.identifier(BIN_SYSTEM)
    if bin_node is None or not isinstance(bin_node.node, str):
        b.warn(f"{org.reference} has no identifier with system {BIN_SYSTEM}", org.path)
        return None
    bin_ = str(b.take("provider.bin", bin_node))
    b.issues.extend(check_bin(bin_, bin_node.path, "provider BIN", relaxed=b.relaxed_iin))
    name = b.text("provider.name", org.child("name"))
    mo_node = org.identifier(MO_CODE_SYSTEM)
    mo_code = b.text("provider.mo_code", mo_node)
    return Provider(org.reference, bin_, name, mo_code)
