"""kz-profiles: every valid KZ example is accepted, read back, and still meets its KZ profile when the
kit validates the read-back copy itself (MD-B at booking, MD-D at delivery, AC-07 consent content)."""

from __future__ import annotations

from conformance.context import RunContext
from conformance.examples import valid_refs
from conformance.expect import expect_resource, expect_status
from conformance.model import CheckFailed, CheckSkipped, Outcome, failed, passed, skipped
from conformance.registry import check
from conformance.validation import KZ_PROFILES, format_issues, kz_profile_issues

GROUP = "kz-profiles"


async def _round_trip(ctx: RunContext, ref: str) -> tuple[list[str], int]:
    """Create ``ref`` (or reuse it), read it back and validate: (error texts, warning count)."""
    resource_type = ref.split("/")[0]
    server_id = await ctx.fixtures.ensure(ref)
    response = await ctx.client.get(f"{resource_type}/{server_id}")
    expect_status(ctx.client, response, 200, doing=f"read back {ref}")
    issues = kz_profile_issues(expect_resource(response, resource_type, doing=f"read back {ref}"))
    errors = [i for i in issues if i.is_error]
    texts = [f"{ref} read back as {resource_type}/{server_id} breaks its profile: {format_issues(errors)}"]
    return (texts if errors else []), len(issues) - len(errors)


async def _examples_round_trip(ctx: RunContext, resource_type: str) -> Outcome:
    refs = valid_refs(resource_type)
    problems: list[str] = []
    warnings = 0
    for ref in refs:
        try:
            errors, warned = await _round_trip(ctx, ref)
        except CheckFailed as exc:
            errors, warned = [str(exc)], 0
        problems += errors
        warnings += warned
    if problems:
        return failed("; ".join(problems))
    note = f" ({warnings} validator warnings)" if warnings else ""
    profile = KZ_PROFILES[resource_type]
    return passed(f"{len(refs)} examples accepted and valid against {profile} on read{note}")


def _declare(check_id: str, resource_type: str, covers: list[str]) -> None:
    title = f"KZ {resource_type} examples are accepted and read back valid"

    @check(check_id, GROUP, title, [*covers, "R4 profiling.html"])
    async def round_trip(ctx: RunContext) -> Outcome:
        return await _examples_round_trip(ctx, resource_type)


for _id, _type, _covers in (
    ("KZ-01", "Organization", ["TM-04", "AC-07"]),
    ("KZ-02", "Practitioner", ["TM-04", "MD-D"]),
    ("KZ-03", "Patient", ["TM-04", "MD-B", "MD-D"]),
    ("KZ-04", "Appointment", ["MD-B", "TM-06", "TM-20"]),
    ("KZ-05", "Encounter", ["MD-D", "TM-02", "TM-20"]),
    ("KZ-06", "Observation", ["TM-22", "TM-23", "TM-24"]),
    ("KZ-07", "Consent", ["AC-07", "AC-06", "AC-09", "AC-10", "TM-07"]),
    ("KZ-09", "ServiceRequest", ["TM-08", "MD-D"]),
    ("KZ-10", "MedicationRequest", ["MD-D"]),
):
    _declare(_id, _type, _covers)


@check("KZ-08", GROUP, "KZ AuditEvent examples are accepted and read back valid, or refused as server-only",
       ["AC-14", "TM-13", "R4 profiling.html"])
async def audit_events(ctx: RunContext) -> Outcome:
    # A server may keep AuditEvents server-written only (AC-14: the log must not be forgeable); a refusal
    # of client-written events (403/405) is then the right answer and their shape cannot be checked here.
    try:
        return await _examples_round_trip(ctx, "AuditEvent")
    except CheckSkipped as exc:
        return skipped(f"client-written AuditEvents are refused ({exc}); only the server writes its log")
