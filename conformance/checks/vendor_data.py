"""vendor-data: the records the vendor already holds meet the KZ profiles, the IIN/BIN rules and the
minimal data sets MD-B and MD-D, judged locally by the kit's own validator (validation.py), so a server
cannot pass by storing whatever it is sent. The kit's own test resources are left out (sampling.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from conformance.context import RunContext
from conformance.examples import BIN_SYSTEM, IIN_SYSTEM, references, walk
from conformance.minimal_data import MD_D_UNCHECKED, md_b_gaps, md_d_gaps
from conformance.model import CheckSkipped, Outcome, failed, passed, skipped
from conformance.registry import check
from conformance.sampling import mask, read_person, sample
from conformance.validation import KZ_PROFILES, format_issues, kz_profile_issues
from profiles.identifiers import validate_bin, validate_iin

GROUP = "vendor-data"
_SHOWN = 5
GapFinder = Callable[[Mapping[str, Any], Mapping[str, Mapping[str, Any] | None]], list[str]]
_PEOPLE = ("Patient", "Practitioner")


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


def _identifiers(resource: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in walk(resource)
            if n.get("system") in (IIN_SYSTEM, BIN_SYSTEM) and isinstance(n.get("value"), str)]


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
    """The patients and practitioners a record names, read (the data sets need their IIN and name)."""
    refs = sorted({ref.key for ref in references(resource) if ref.type in _PEOPLE})
    return {ref: await read_person(ctx, ref) for ref in refs}


async def _lacking(ctx: RunContext, records: list[dict[str, Any]], gaps_of: GapFinder) -> list[str]:
    """Per record that lacks items of a minimal data set: its reference and the items."""
    problems = []
    for record in records:
        gaps = gaps_of(record, await _people(ctx, record))
        if gaps:
            problems.append(f"{record['resourceType']}/{record.get('id')}: {', '.join(gaps)}")
    return problems


@check("VD-21", GROUP, "The vendor's bookings carry the MD-B minimal data set, item by item", ["MD-B", "TM-06"])
async def bookings_carry_md_b(ctx: RunContext) -> Outcome:
    found = await sample(ctx, "Appointment")
    problems = await _lacking(ctx, found, md_b_gaps)
    if problems:
        return failed(f"{len(problems)} of {len(found)} bookings lack MD-B items: " + _listed(problems))
    return passed(f"{len(found)} bookings carry MD-B items 1-4")


@check("VD-22", GROUP, "The vendor's remote encounters carry the MD-D minimal data set, item by item",
       ["MD-D", "TM-20"])
async def encounters_carry_md_d(ctx: RunContext) -> Outcome:
    found = [e for e in await sample(ctx, "Encounter") if (e.get("class") or {}).get("code") == "VR"]
    if not found:
        return skipped("no remote (class VR) Encounter among the sampled records")
    problems = await _lacking(ctx, found, md_d_gaps)
    if problems:
        return failed(f"{len(problems)} of {len(found)} remote encounters lack MD-D items: " + _listed(problems))
    return passed(f"{len(found)} remote encounters carry MD-D items 1-6; {MD_D_UNCHECKED}")
