"""access: the operations that gather a patient's data in bulk — ``Patient/$everything`` and the Bulk Data
``$export`` — return nothing of a patient who has not consented (AC-01, AC-12; architecture.md: the
policy is called on every resource of ``$everything`` and ``$export``)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from conformance.access.judge import Findings, Req, absent_id, probe_pair
from conformance.access.leaks import hidden_in
from conformance.access.records import same_origin
from conformance.access.scenario import Scenario, scenario
from conformance.capability import operations
from conformance.context import RunContext
from conformance.expect import diagnostics
from conformance.http import json_body
from conformance.model import Outcome, failed, passed, skipped
from conformance.registry import check

GROUP = "access"
_NOT_OFFERED = (404, 405, 501)
_EXPORT_WAIT_SECONDS = 60.0


@check("ACC-06", GROUP, "Without consent, Patient/$everything returns nothing of the patient",
       ["AC-01", "AC-12", "R4 patient-operation-everything.html"])
async def everything_returns_nothing(ctx: RunContext) -> Outcome:
    sc = await scenario(ctx)
    findings = Findings()
    hidden, absent = await probe_pair(
        ctx, sc, findings, sc.unconsented, "GET", Req(f"{sc.patient_ref}/$everything"),
        Req(f"Patient/{absent_id()}/$everything"), what=f"GET {sc.patient_ref}/$everything", read=True,
        target=sc.patient_ref, in_log=True)
    declared = "everything" in operations(ctx.capability, "Patient")
    if not declared and hidden.status_code in _NOT_OFFERED and absent.status_code in _NOT_OFFERED:
        return skipped(f"$everything is not offered ({hidden.status_code}) nor declared")
    if hidden.is_success and not absent.is_success:
        findings.problems.append(f"$everything of the hidden patient succeeds ({hidden.status_code}) where an "
                                 f"unknown patient's fails ({absent.status_code}): it tells that the patient exists")
    return findings.outcome("answered as for an unknown patient")


async def _poll(ctx: RunContext, sc: Scenario, status_url: str) -> tuple[int, dict[str, Any] | None]:
    deadline = asyncio.get_running_loop().time() + _EXPORT_WAIT_SECONDS
    while True:
        response = await ctx.client.get(status_url, identity=sc.unconsented)  # polling is no data access
        if response.status_code != 202 or asyncio.get_running_loop().time() >= deadline:
            return response.status_code, json_body(response)
        await asyncio.sleep(min(float(response.headers.get("retry-after", "1") or 1), 2.0))


async def _exported(ctx: RunContext, sc: Scenario, manifest: dict[str, Any]) -> tuple[list[str], int]:
    """Hidden resources found in the export's files, and how many resources the files held."""
    found: list[str] = []
    count = 0
    for output in manifest.get("output") or []:
        url = str((output or {}).get("url") or "")
        if not same_origin(ctx, url):
            continue
        response = await sc.access(ctx, sc.unconsented, "GET", url, headers={"Accept": "application/fhir+ndjson"})
        for line in response.text.splitlines():
            try:
                resource = json.loads(line)
            except ValueError:
                continue
            count += 1
            found += hidden_in(resource, sc.hidden(), sc.patient_ref)
    return found, count


@check("ACC-07", GROUP, "Without consent, a Bulk Data $export contains nothing of the patient",
       ["AC-01", "AC-12", "Bulk Data IG export"])
async def export_contains_nothing(ctx: RunContext) -> Outcome:
    sc = await scenario(ctx)
    kickoff = await sc.access(ctx, sc.unconsented, "GET", "Patient/$export",
                              params={"_type": "Patient,Observation"}, headers={"Prefer": "respond-async"},
                              target=sc.patient_ref)
    declared = "export" in operations(ctx.capability, "Patient") | operations(ctx.capability)
    if kickoff.status_code in _NOT_OFFERED and not declared:
        return skipped(f"Patient/$export is not offered ({kickoff.status_code}) nor declared")
    if kickoff.status_code in (401, 403):
        return passed(f"the export was refused ({kickoff.status_code}: {diagnostics(kickoff)})")
    location = kickoff.headers.get("content-location", "")
    if kickoff.status_code != 202 or not location:
        return failed(f"kick-off: expected 202 with Content-Location or a refusal, got {kickoff.status_code}: "
                      f"{diagnostics(kickoff)}")
    if not same_origin(ctx, location):
        return failed(f"the status URL {location} is not below the base URL")
    status, manifest = await _poll(ctx, sc, location)
    if status != 200 or manifest is None:
        return failed(f"the export did not complete within {_EXPORT_WAIT_SECONDS:.0f} s (status {status})")
    hidden, count = await _exported(ctx, sc, manifest)
    await ctx.client.request("DELETE", location, identity=sc.unconsented)  # the job and its files (IG v2)
    if hidden:
        return failed(f"the export of a caller without consent holds {', '.join(dict.fromkeys(hidden))}")
    return passed(f"export complete: {count} resources, none of the test patient's")
