"""access: a patient sees their own data, not another patient's (AC-01, AC-12). A server that checks only
that the caller *is* a patient — the portal bug of scoping by role instead of by person — serves every
record to every patient; the second test patient must get nothing of the first one's data.
"""

from __future__ import annotations

from conformance.access.judge import Findings, Req, absent_id, probe_pair
from conformance.access.scenario import scenario
from conformance.context import RunContext
from conformance.model import Outcome, skipped
from conformance.registry import check

GROUP = "access"


@check("ACC-15", GROUP, "Another patient gets nothing of the patient's data: reads by id and searches",
       ["AC-01", "AC-12", "R4 security.html", "SMART patient scopes"])
async def other_patient_gets_nothing(ctx: RunContext) -> Outcome:
    sc = await scenario(ctx)
    other = sc.other_patient
    if other is None or other.reference is None:
        return skipped("no second patient (otherPatient in the identities file)")
    findings, gone = Findings(), absent_id()
    for hidden, absent in ((sc.patient_ref, f"Patient/{gone}"), (sc.observation_ref, f"Observation/{gone}")):
        await probe_pair(ctx, sc, findings, other, "GET", Req(hidden), Req(absent),
                         what=f"GET {hidden} as {other.label}", read=True, target=hidden, in_log=True)
    for kind, params, twin in (("Observation", {"subject": sc.patient_ref}, {"subject": f"Patient/{gone}"}),
                               ("Patient", {"_id": sc.patient_id}, {"_id": gone})):
        query = "&".join(f"{k}={v}" for k, v in params.items())
        await probe_pair(ctx, sc, findings, other, "GET", Req(kind, params), Req(kind, twin),
                         what=f"GET {kind}?{query} as {other.label}")
    return findings.outcome(f"{other.label} was answered as if the patient did not exist")
