"""search: finding the kit's own records by the national identifiers and by patient (R4 search.html)."""

from __future__ import annotations

from typing import Any

import httpx

from conformance.capability import search_params
from conformance.context import RunContext
from conformance.examples import BIN_SYSTEM, IIN_SYSTEM, identifier_value, valid_example
from conformance.expect import expect_resource, expect_status
from conformance.model import Outcome, failed, passed, skipped
from conformance.registry import check

GROUP = "search"


def _found(bundle: dict[str, Any], resource_type: str, resource_id: str) -> bool:
    entries = bundle.get("entry") if isinstance(bundle.get("entry"), list) else []
    found = [e.get("resource") for e in entries or [] if isinstance(e, dict)]
    resources: list[dict[str, Any]] = [r for r in found if isinstance(r, dict)]
    return any(r.get("resourceType") == resource_type and r.get("id") == resource_id for r in resources)


async def _search_finds(ctx: RunContext, response: httpx.Response, resource_type: str, resource_id: str,
                        query: str) -> Outcome:
    expect_status(ctx.client, response, 200, doing=f"search {query}")
    bundle = expect_resource(response, "Bundle", doing=f"search {query}")
    if bundle.get("type") != "searchset":
        return failed(f"Bundle.type is {bundle.get('type')!r}, expected 'searchset'")
    if not _found(bundle, resource_type, resource_id):
        return failed(f"{query} did not return {resource_type}/{resource_id}")
    return passed(f"{query} found {resource_type}/{resource_id}")


@check("SRCH-01", GROUP, "Patient?identifier=<IIN system>|<IIN> finds the patient",
       ["TM-04", "MD-B", "R4 search.html#token"])
async def patient_by_identifier(ctx: RunContext) -> Outcome:
    patient_id = await ctx.fixtures.ensure("Patient/kz-patient-1")
    value = f"{IIN_SYSTEM}|{ctx.fixtures.iin_of('Patient/kz-patient-1')}"
    response = await ctx.client.get("Patient", params={"identifier": value})
    return await _search_finds(ctx, response, "Patient", patient_id, f"Patient?identifier={value}")


@check("SRCH-02", GROUP, "Patient?iin=<IIN> (KZ SearchParameter) finds the patient", ["TM-04", "MD-B"])
async def patient_by_iin(ctx: RunContext) -> Outcome:
    if "iin" not in search_params(ctx.capability, "Patient"):
        return skipped("Patient.iin is not declared (see CAP-06)")
    patient_id = await ctx.fixtures.ensure("Patient/kz-patient-1")
    iin = ctx.fixtures.iin_of("Patient/kz-patient-1")
    response = await ctx.client.get("Patient", params={"iin": iin})
    return await _search_finds(ctx, response, "Patient", patient_id, f"Patient?iin={iin}")


@check("SRCH-03", GROUP, "Organization?bin=<BIN> (KZ SearchParameter) finds the organisation",
       ["TM-04", "AC-07"])
async def organization_by_bin(ctx: RunContext) -> Outcome:
    if "bin" not in search_params(ctx.capability, "Organization"):
        return skipped("Organization.bin is not declared (see CAP-06)")
    organization_id = await ctx.fixtures.ensure("Organization/kz-organization-1")
    bin_value = identifier_value(valid_example("Organization/kz-organization-1") or {}, BIN_SYSTEM) or ""
    response = await ctx.client.get("Organization", params={"bin": bin_value, "_count": "100"})
    query = f"Organization?bin={bin_value}"
    return await _search_finds(ctx, response, "Organization", organization_id, query)


@check("SRCH-04", GROUP, "Appointment?patient=Patient/<id> finds the patient's booking",
       ["TM-06", "MD-B", "R4 search.html#reference"])
async def appointment_by_patient(ctx: RunContext) -> Outcome:
    appointment_id = await ctx.fixtures.ensure("Appointment/kz-appointment-1")
    patient = f"Patient/{await ctx.fixtures.ensure('Patient/kz-patient-1')}"
    response = await ctx.client.get("Appointment", params={"patient": patient})
    return await _search_finds(ctx, response, "Appointment", appointment_id, f"Appointment?patient={patient}")
