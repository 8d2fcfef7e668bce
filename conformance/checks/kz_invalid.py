"""kz-profiles: invalid KZ content is refused (400/422 + OperationOutcome). Accepting it fails whether or
not the server declares the KZ profiles: a certified system keeps the KZ rules for every record.

Each check posts one example of ``profiles/examples/invalid`` (index.json names the rule it breaks).
"""

from __future__ import annotations

from conformance.capability import claims_kz_profile, operations
from conformance.context import RunContext
from conformance.examples import invalid_example, invalid_rule
from conformance.expect import diagnostics, is_operation_outcome, refusal_reason
from conformance.fixtures import created_id
from conformance.http import json_body
from conformance.model import Outcome, failed, passed, warning
from conformance.registry import check
from conformance.validation import kz_profile_issues

GROUP = "kz-profiles"

INVALID_CASES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("KZ-20", "Patient-iin-check-digit.json", ("TM-04", "MD-B")),
    ("KZ-21", "Patient-no-iin.json", ("TM-04", "MD-B")),
    ("KZ-22", "Practitioner-no-iin.json", ("TM-04", "MD-D")),
    ("KZ-23", "Organization-bin-check-digit.json", ("TM-04", "AC-07")),
    ("KZ-24", "Appointment-patient-no-iin.json", ("MD-B",)),
    ("KZ-25", "Appointment-no-service.json", ("MD-B",)),
    ("KZ-26", "Appointment-no-doctor-or-area.json", ("MD-B",)),
    ("KZ-27", "Appointment-no-start.json", ("MD-B", "TM-06")),
    ("KZ-28", "Encounter-no-service-form.json", ("MD-D",)),
    ("KZ-29", "Encounter-channel-code.json", ("MD-D", "TM-20")),
    ("KZ-30", "Encounter-diagnosis-no-kind.json", ("MD-D",)),
    ("KZ-31", "Consent-no-purpose.json", ("AC-07",)),
    ("KZ-32", "Consent-no-data-location.json", ("AC-07", "AC-23")),
    ("KZ-33", "Consent-no-signature.json", ("AC-07", "AC-08")),
    ("KZ-34", "Observation-no-entry-method.json", ("TM-23", "TM-24")),
    ("KZ-35", "MedicationRequest-no-dosage.json", ("MD-D",)),
    ("KZ-36", "ServiceRequest-consilium-one-performer.json", ("TM-08",)),
)


async def _refused(ctx: RunContext, filename: str) -> Outcome:
    resource = await ctx.fixtures.adapt(invalid_example(filename))
    resource_type = str(resource["resourceType"])
    if not any(i.is_error for i in kz_profile_issues(resource)):
        raise RuntimeError(f"kit defect: {filename} passes the kit's own validator after adaptation")
    response = await ctx.client.post(resource_type, json=resource)
    registered: str | None = None
    if resource_type == "Patient" and response.status_code == 403:
        # A secured server lets the writer create a Patient only with its consent (as KZ-03's valid ones
        # get in): send it that way too, so the server judges the content, not the missing consent —
        # else a secured server storing invalid IINs would only ever skip KZ-20/KZ-21 (TM-04, MD-B).
        response, registered = await ctx.fixtures.register(resource, f"posting {filename}")
    rule = invalid_rule(filename)
    if response.status_code in (400, 422):
        if not is_operation_outcome(response):
            return failed(f"refused ({response.status_code}) without an OperationOutcome")
        return passed(f"refused {response.status_code}: {diagnostics(response)}")
    if response.is_success:
        new_id = registered or created_id(response)
        if new_id and not registered:  # a registered one is tracked already
            ctx.fixtures.track(resource_type, new_id)
        message = f"accepted ({response.status_code}) although it breaks {rule}"
        if claims_kz_profile(ctx.capability, resource_type):
            return failed(message + "; the CapabilityStatement declares the KZ profile")
        # The minimal data sets and the national identifiers bind every record of a certified system
        # (MD-B, MD-D, TM-04), declared or not: a warning here would let MD-B/MD-D pass (issue 18).
        return failed(message + "; the KZ rules bind every record, although the server does not declare "
                      "the KZ profile (CAP-08)")
    problem = refusal_reason(ctx.client, response, f"posting {filename}")
    if problem is not None:
        raise problem
    return failed(f"expected 400 or 422 for {rule}, got {response.status_code}: {diagnostics(response)}")


def _declare(check_id: str, filename: str, covers: tuple[str, ...]) -> None:
    title = f"Invalid KZ {filename.split('-')[0]} refused: {invalid_rule(filename)}"

    @check(check_id, GROUP, title, [*covers, "R4 http.html#create", "R4 profiling.html"])
    async def refused(ctx: RunContext) -> Outcome:
        return await _refused(ctx, filename)


for _id, _file, _covers in INVALID_CASES:
    _declare(_id, _file, _covers)


@check("KZ-40", GROUP, "$validate reports a KZ profile violation as an error issue",
       ["TM-04", "R4 operation-resource-validate.html"])
async def validate_operation_finds_errors(ctx: RunContext) -> Outcome:
    resource = await ctx.fixtures.adapt(invalid_example("Patient-iin-check-digit.json"))
    response = await ctx.client.post("Patient/$validate", json=resource)
    declared = "validate" in operations(ctx.capability, "Patient")
    if response.status_code in (404, 405, 501) and not declared:
        return warning(f"$validate is not offered ({response.status_code})")
    body = json_body(response)
    if body is None or body.get("resourceType") != "OperationOutcome":
        problem = refusal_reason(ctx.client, response, "Patient/$validate")
        if problem is not None:
            raise problem
        return failed(f"expected an OperationOutcome, got {response.status_code}: {diagnostics(response)}")
    issues = [i for i in body.get("issue") or [] if isinstance(i, dict)]
    errors = [i for i in issues if i.get("severity") in ("error", "fatal")]
    if not errors:
        return failed("the OperationOutcome has no error although the IIN check digit is wrong (kz-iin-2)")
    return passed(f"{response.status_code}: {diagnostics(response)}")
