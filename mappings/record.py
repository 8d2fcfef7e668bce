"""Gather the MD-D minimal data set of one remote service from FHIR resources (TM-11, MD-D).

Input: a dict ``reference -> resource`` holding the KZ remote-service Encounter and what it references
(Patient, Practitioner or PractitionerRole, Organization, the Conditions of its diagnoses) plus the
resources of the service (Observations, ServiceRequests, MedicationRequests, CarePlan, Composition or
ClinicalImpression with the note and conclusion, DocumentReference of a sick-leave document, Coverage,
ChargeItem, Provenance). Keys may be relative (``Patient/1``), absolute or ``urn:uuid`` references.

Output: a :class:`RemoteServiceRecord`. A missing mandatory item is an error issue naming the MD-D item
and the FHIR expression it is read from; invalid IIN/BIN or codes are issues too. Nothing raises except
a call without a usable Encounter. docs/mappings.md has the table of item → FHIR path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mappings import _clinical, _context, _orders, _people
from mappings._build import Build
from mappings._fhir import Cursor, ResourceSet
from mappings._links import linked
from mappings.codes import CS_SERVICE, EXT_CHANNEL, EXT_FORM
from mappings.model import Coded, RemoteServiceRecord

__all__ = ["build_record"]


def _encounter(resources: ResourceSet, reference: str | None) -> Cursor:
    if reference is not None:
        found = resources.get(reference)
        if found is None or found.resource_type != "Encounter":
            raise ValueError(f"{reference} is not an Encounter of the input")
        return found
    encounters = resources.of_type("Encounter")
    if len(encounters) != 1:
        raise ValueError(f"the input holds {len(encounters)} Encounters; name the one to map")
    return encounters[0]


def _ext_item(b: Build, encounter: Cursor, item: int, url: str, key: str, what: str) -> Coded | None:
    value = encounter.ext_coding(url)
    if value is None:
        b.missing(item)
        return None
    return b.coded(key, value, f"MD-D {item} {what}")


def _service(b: Build, encounter: Cursor) -> Coded | None:
    """MD-D 4 from Encounter.serviceType: the kz-service coding, else any coding with code and name."""
    concept = encounter.child("serviceType")
    coding = concept.coding(CS_SERVICE) if concept is not None else None
    if coding is None and concept is not None:
        coding = next((c for c in concept.children("coding") if isinstance(c.node.get("system"), str)
                       and isinstance(c.node.get("code"), str) and c.node.get("display")), None)
    if coding is None:
        b.missing(4)
        return None
    service = b.coded("service", coding, "MD-D 4 service code")
    if not service.display:
        b.missing(4, f"{coding.path} has a code but no name (display)")
    return service


def _class(b: Build, encounter: Cursor) -> str | None:
    code = b.text("class_code", encounter.child("class", "code"))
    if code != "VR":
        b.warn(f"Encounter.class is {code!r}, not VR (virtual): the KZ remote-service profile expects VR",
               "Encounter.class")
    return code


def build_record(
    resources: Mapping[str, dict[str, Any]], encounter: str | None = None, *, relaxed_iin: bool = False
) -> RemoteServiceRecord:
    """The MD-D record of one remote service; ``encounter`` names it when the input holds several.

    ``relaxed_iin`` checks IIN/BIN for 12 digits only (for the NCA test PKI, kz-domain.md §1.3).
    """
    b = Build(ResourceSet(resources), relaxed_iin=relaxed_iin)
    enc = _encounter(b.resources, encounter)
    b.use(enc)
    patient = _people.patient(b, enc)
    pk = patient.reference if patient is not None else None
    compositions = linked(b, "Composition", enc, pk)
    referrals, mse = _orders.referrals(b, enc, pk)
    start = b.text("start", enc.child("period", "start"))
    fields: dict[str, Any] = {
        "record_id": _context.record_id(b, enc), "encounter": enc.key,
        "encounter_version": b.text("encounter_version", enc.child("meta", "versionId")),
        "status": b.text("status", enc.child("status")), "start": start,
        "end": b.text("end", enc.child("period", "end")), "class_code": _class(b, enc),
        "form": _ext_item(b, enc, 1, EXT_FORM, "form", "form of remote service"),
        "channel": _ext_item(b, enc, 2, EXT_CHANNEL, "channel", "telecom channel"),
        "patient": patient, "service": _service(b, enc), "practitioner": _people.practitioner(b, enc),
        "diagnoses": _clinical.diagnoses(b, enc), "note": _clinical.note(b, enc, pk, compositions),
        "conclusion": _clinical.conclusion(b, enc, pk, compositions),
        "plan": _clinical.plan(b, enc, pk, compositions), "referrals": referrals,
        "prescriptions": _orders.prescriptions(b, enc, pk), "disability": _orders.disability(b, enc, pk),
        "mse_referrals": mse, "provider": _people.provider(b, enc), "funding": _context.funding(b, enc, pk),
        "osms_insured": _context.osms_insured(b, pk, start), "based_on": _context.based_on(b, enc),
        "nehp_id": _context.nehp_id(b, enc), "charge": _context.charge(b, enc, pk),
    }
    for composition in compositions:  # the narrative sections were read from these
        b.use(composition)
    # Signatures last: they cover any resource read above (b.used is complete here).
    signatures = _context.signatures(b)
    return RemoteServiceRecord(**fields, signatures=signatures, issues=tuple(b.issues), trace=dict(b.trace),
                               sources=dict(b.used))
