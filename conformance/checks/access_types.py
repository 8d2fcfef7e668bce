"""access: consent covers all of the patient's data, not only the type the other probes use. The writer
records one resource of each KZ clinical type for the test patient (from the IG's valid examples); the
practitioner without consent must get none of them, by id, by the patient search parameter or through
``_include``
(AC-01, AC-12; R4 security.html: a server that protects Observations and serves Encounters fails).
"""

from __future__ import annotations

from typing import Any

from conformance.access.judge import Findings, Req, absent_id, probe_pair
from conformance.access.scenario import Scenario, scenario
from conformance.context import RunContext
from conformance.examples import IIN_SYSTEM, valid_example, walk
from conformance.expect import diagnostics
from conformance.fixtures import created_id
from conformance.model import Outcome, skipped, warning
from conformance.registry import check

GROUP = "access"
_EXAMPLE_PATIENT = "Patient/kz-patient-1"  # whom the IG's clinical examples are about
# type -> the IG example the kit records for the test patient (each has a ``patient`` search parameter)
_TYPES = {"Encounter": "Encounter/kz-encounter-1", "Appointment": "Appointment/kz-appointment-1",
          "ServiceRequest": "ServiceRequest/kz-servicerequest-1",
          "MedicationRequest": "MedicationRequest/kz-medicationrequest-1"}


def _about(example: dict[str, Any], sc: Scenario) -> dict[str, Any]:
    """The example re-targeted at the test patient: the reference and, where it is given, the IIN."""
    for node in walk(example):
        if node.get("reference") == _EXAMPLE_PATIENT:
            node["reference"] = sc.patient_ref
            identifier = node.get("identifier")
            if isinstance(identifier, dict) and identifier.get("system") == IIN_SYSTEM and sc.iin:
                identifier["value"] = sc.iin
    return example


async def _record(ctx: RunContext, sc: Scenario, kind: str) -> tuple[str | None, str]:
    """Create the type's example for the test patient as the writer: (new id, why not)."""
    body = await ctx.fixtures.adapt(_about(valid_example(_TYPES[kind]) or {}, sc))
    response = await sc.access(ctx, None, "POST", kind, json=body, target=kind)
    new_id = created_id(response) if response.status_code in (200, 201) else None
    if new_id is None:
        return None, f"{kind}: {response.status_code} {diagnostics(response)}"[:200]
    ctx.fixtures.track(kind, new_id)
    sc.extra_hidden.add(f"{kind}/{new_id}")
    return new_id, ""


@check("ACC-14", GROUP, "Without consent, the patient's data of every KZ clinical type is hidden, not only "
                        "Observations: Encounter, Appointment, ServiceRequest, MedicationRequest",
       ["AC-01", "AC-12", "R4 security.html"])
async def every_type_hidden(ctx: RunContext) -> Outcome:
    sc = await scenario(ctx)
    findings, refused = Findings(), []
    for kind in _TYPES:
        new_id, why = await _record(ctx, sc, kind)
        if new_id is None:
            refused.append(why)
            continue
        gone = absent_id()
        await probe_pair(ctx, sc, findings, sc.unconsented, "GET", Req(f"{kind}/{new_id}"), Req(f"{kind}/{gone}"),
                         what=f"GET {kind}/{new_id}", read=True, target=f"{kind}/{new_id}", in_log=True)
        await probe_pair(ctx, sc, findings, sc.unconsented, "GET", Req(kind, {"patient": sc.patient_ref}),
                         Req(kind, {"patient": f"Patient/{gone}"}), what=f"GET {kind}?patient={sc.patient_ref}")
        include = {"_include": f"{kind}:patient"}
        await probe_pair(ctx, sc, findings, sc.unconsented, "GET", Req(kind, {"_id": new_id, **include}),
                         Req(kind, {"_id": gone, **include}), what=f"GET {kind}?_id={new_id}&_include={kind}:patient")
    if len(refused) == len(_TYPES):
        return skipped("the writer could record none of the types for the test patient: " + "; ".join(refused))
    done = f"{len(_TYPES) - len(refused)} types hidden by id, by search and through _include"
    if refused and not findings.problems:  # only part of the patient's record could be probed
        return warning(f"{done}; not recorded by the server, so not judged: {'; '.join(refused)}")
    return findings.outcome(done)
