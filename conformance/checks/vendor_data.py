"""vendor-data: the records the vendor already holds meet the KZ profiles, the IIN/BIN rules and the
minimal data sets MD-B and MD-D, judged locally by the kit's own validator (validation.py), so a server
cannot pass by storing whatever it is sent. The kit's own test resources are left out (sampling.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from conformance.context import RunContext
from conformance.examples import BIN_SYSTEM, IIN_SYSTEM
from conformance.minimal_data import MD_D_UNCHECKED, md_b_gaps, md_d_gaps
from conformance.model import CheckSkipped, Outcome, failed, passed, skipped
from conformance.registry import check
from conformance.sampling import mask, read_person, sample
from conformance.validation import KZ_PROFILES, format_issues, kz_profile_issues
from profiles.identifiers import validate_bin, validate_iin

GROUP = "vendor-data"
_SHOWN = 5
_PEOPLE = ("Patient/", "Practitioner/")


def _listed(problems: list[str]) -> str:
    more = f" (+{len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
    return mask("; ".join(problems[:_SHOWN]) + more)


async def _profiles(ctx: RunContext, resource_type: str) -> Outcome:
    found = await sample(ctx, resource_type)
    problems = []
    for resource in found:
        errors = [i for i in kz_profile_issues(resource) if i.is_error]
        if errors:
            problems.append(f"{resource_type}/{resource.get('id')}: {format_issues(errors, 3)}")
    if problems:
        return failed(f"{len(problems)} of {len(found)} sampled records break {KZ_PROFILES[resource_type]}: "
                      + _listed(problems))
    return passed(f"{len(found)} sampled records meet {KZ_PROFILES[resource_type]}")


def _declare(check_id: str, resource_type: str, covers: list[str]) -> None:
    @check(check_id, GROUP, f"The vendor's {resource_type} records meet the KZ profile",
           [*covers, "R4 profiling.html"])
    async def profile_of_vendor_data(ctx: RunContext) -> Outcome:
        return await _profiles(ctx, resource_type)


for _id, _type, _covers in (
    ("VD-01", "Organization", ["TM-04", "AC-07"]),
    ("VD-02", "Practitioner", ["TM-04", "MD-D"]),
    ("VD-03", "Patient", ["TM-04", "MD-B", "MD-D"]),
    ("VD-04", "Appointment", ["MD-B", "TM-06"]),
    ("VD-05", "Encounter", ["MD-D", "TM-20"]),
    ("VD-06", "Observation", ["TM-22", "TM-23", "TM-24"]),
    ("VD-07", "Consent", ["AC-07", "AC-06"]),
    ("VD-08", "AuditEvent", ["AC-14", "TM-13"]),
    ("VD-09", "ServiceRequest", ["TM-08", "MD-D"]),
    ("VD-10", "MedicationRequest", ["MD-D"]),
):
    _declare(_id, _type, _covers)


def _identifiers(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("system") in (IIN_SYSTEM, BIN_SYSTEM) and isinstance(node.get("value"), str):
            yield node
        for value in node.values():
            yield from _identifiers(value)
    elif isinstance(node, list):
        for value in node:
            yield from _identifiers(value)


async def _sampled(ctx: RunContext, types: tuple[str, ...]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for resource_type in types:
        try:
            found += await sample(ctx, resource_type)
        except CheckSkipped:
            continue
    return found


@check("VD-20", GROUP, "Every IIN and BIN in the vendor's records is valid (format, date, check digit)",
       ["TM-04", "MD-B", "MD-D", "AC-07"])
async def identifiers_valid(ctx: RunContext) -> Outcome:
    records = await _sampled(ctx, ("Patient", "Practitioner", "Organization", "Appointment", "Consent"))
    problems, seen = [], 0
    for resource in records:
        for identifier in _identifiers(resource):
            seen += 1
            check_of = validate_iin if identifier["system"] == IIN_SYSTEM else validate_bin
            for reason in check_of(identifier["value"]):
                problems.append(f"{resource['resourceType']}/{resource.get('id')}: {reason}")
    if not seen:
        return skipped("the sampled records hold no IIN or BIN")
    if problems:
        return failed(f"{len(problems)} of {seen} identifiers invalid: " + _listed(problems))
    return passed(f"{seen} IINs/BINs in {len(records)} records valid")


async def _people(ctx: RunContext, resource: dict[str, Any]) -> dict[str, dict[str, Any] | None]:
    refs = {str(n["reference"]) for n in _references(resource) if str(n["reference"]).startswith(_PEOPLE)}
    return {ref: await read_person(ctx, ref) for ref in sorted(refs)}


def _references(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _references(value)


@check("VD-21", GROUP, "The vendor's bookings carry the MD-B minimal data set, item by item", ["MD-B", "TM-06"])
async def bookings_carry_md_b(ctx: RunContext) -> Outcome:
    found = await sample(ctx, "Appointment")
    problems = []
    for appointment in found:
        gaps = md_b_gaps(appointment, await _people(ctx, appointment))
        if gaps:
            problems.append(f"Appointment/{appointment.get('id')}: {', '.join(gaps)}")
    if problems:
        return failed(f"{len(problems)} of {len(found)} bookings lack MD-B items: " + _listed(problems))
    return passed(f"{len(found)} bookings carry MD-B items 1-4")


@check("VD-22", GROUP, "The vendor's remote encounters carry the MD-D minimal data set, item by item",
       ["MD-D", "TM-20"])
async def encounters_carry_md_d(ctx: RunContext) -> Outcome:
    found = [e for e in await sample(ctx, "Encounter") if (e.get("class") or {}).get("code") == "VR"]
    if not found:
        return skipped("no remote (class VR) Encounter among the sampled records")
    problems = []
    for encounter in found:
        gaps = md_d_gaps(encounter, await _people(ctx, encounter))
        if gaps:
            problems.append(f"Encounter/{encounter.get('id')}: {', '.join(gaps)}")
    if problems:
        return failed(f"{len(problems)} of {len(found)} remote encounters lack MD-D items: " + _listed(problems))
    return passed(f"{len(found)} remote encounters carry MD-D items 1-6; {MD_D_UNCHECKED}")
