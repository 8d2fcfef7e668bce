"""access: the search paths a client can take besides the plain ones ACC-02 sends — the patient
compartment, chained and reverse-chained parameters, system-level search, ``_elements`` — and the
history listings. Without the patient's consent each must answer as if the patient had no data
(AC-01, AC-12; R4 search.html, compartmentdefinition.html, http.html#history)."""

from __future__ import annotations

import random

from conformance.access.judge import Findings, Req, absent_id, probe_pair
from conformance.access.scenario import Scenario, scenario
from conformance.context import RunContext
from conformance.examples import IIN_SYSTEM, MARKER_SYSTEM, fresh_iin
from conformance.model import Outcome
from conformance.registry import check

GROUP = "access"


def _pairs(sc: Scenario) -> list[tuple[str, str, dict[str, str] | None, dict[str, str] | None]]:
    """(what, path, hidden params, absent params); the path of the absent side is the hidden one's with
    the patient's id replaced."""
    gone = absent_id()
    practitioner = str(sc.consented.reference).split("/", 1)[1]  # visible to everyone: directory data
    has = "_has:Observation:performer:identifier"
    pairs: list[tuple[str, str, dict[str, str] | None, dict[str, str] | None]] = [
        ("the patient compartment", f"{sc.patient_ref}/Observation", None, None),
        ("the patient parameter", "Observation", {"patient": sc.patient_ref}, {"patient": f"Patient/{gone}"}),
        ("reverse chaining from a visible practitioner", "Practitioner",
         {"_id": practitioner, has: f"{MARKER_SYSTEM}|{sc.marker}"},
         {"_id": practitioner, has: f"{MARKER_SYSTEM}|{gone}"}),
        ("a system-level search", "", {"_type": "Observation", "identifier": f"{MARKER_SYSTEM}|{sc.marker}"},
         {"_type": "Observation", "identifier": f"{MARKER_SYSTEM}|{gone}"}),
        ("_elements", "Observation", {"_id": sc.observation_id, "_elements": "id"}, {"_id": gone, "_elements": "id"}),
    ]
    if sc.iin:
        other = fresh_iin(sc.iin, random.Random())
        chain = "subject:Patient.identifier"
        pairs.append(("a chained parameter", "Observation", {chain: f"{IIN_SYSTEM}|{sc.iin}"},
                      {chain: f"{IIN_SYSTEM}|{other}"}))
    return pairs


@check("ACC-13", GROUP, "Without consent, the compartment, chained, reverse-chained and system-level searches "
                        "and the history listings disclose nothing",
       ["AC-01", "AC-12", "R4 search.html#chaining", "R4 search.html#has", "R4 compartmentdefinition.html",
        "R4 http.html#history"])
async def other_paths_disclose_nothing(ctx: RunContext) -> Outcome:
    sc = await scenario(ctx)
    findings = Findings()
    gone = absent_id()
    for what, path, hidden, absent in _pairs(sc):
        absent_path = path.replace(sc.patient_id, gone)
        query = "&".join(f"{k}={v}" for k, v in (hidden or {}).items())
        await probe_pair(ctx, sc, findings, sc.unconsented, "GET", Req(path, hidden), Req(absent_path, absent),
                         what=f"{what}: GET {path}{'?' + query if query else ''}")
    # History listings have no "absent" twin: they must simply hold nothing of the patient.
    since = {"_since": sc.started.isoformat(timespec="seconds"), "_count": "100"}
    for path in ("Observation/_history", "_history"):
        response = await sc.access(ctx, sc.unconsented, "GET", path, params=since)
        findings.judge(f"GET {path}", response, sc)
    return findings.outcome("each path answered as if the patient had no data")
