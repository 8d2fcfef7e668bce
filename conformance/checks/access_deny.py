"""access: without the patient's consent a practitioner gets nothing of the patient's data — by id, by
search, through _include/_revinclude, or through resources about that data (AC-01, AC-12).

Every probe is sent twice, once where a hidden match exists and once where nothing can match; a
compliant server answers both alike ("hidden means absent"), so the comparison does not depend on
whether it refuses (403) or filters (an empty searchset).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

from conformance.access.judge import Findings, Req, absent_id, probe_pair
from conformance.access.scenario import Scenario, scenario
from conformance.context import RunContext
from conformance.examples import IIN_SYSTEM, MARKER_SYSTEM, fresh_iin
from conformance.fixtures import created_id
from conformance.model import Outcome, skipped
from conformance.registry import check

GROUP = "access"


@check("ACC-01", GROUP, "Without consent, reads by id of the patient's data are refused",
       ["AC-01", "AC-12", "R4 security.html", "R4 http.html#read"])
async def direct_reads_refused(ctx: RunContext) -> Outcome:
    sc = await scenario(ctx)
    findings = Findings()
    gone = absent_id()
    for hidden, absent in ((sc.patient_ref, f"Patient/{gone}"), (sc.observation_ref, f"Observation/{gone}"),
                           (f"{sc.observation_ref}/_history/1", f"Observation/{gone}/_history/1"),
                           (f"{sc.patient_ref}/_history", f"Patient/{gone}/_history")):
        await probe_pair(ctx, sc, findings, sc.unconsented, "GET", Req(hidden), Req(absent),
                         what=f"GET {hidden}", read=True, target=hidden.split("/_history")[0], in_log=True)
    return findings.outcome("refused like unknown ids, naming nothing of the patient")


def _search_pairs(sc: Scenario) -> list[tuple[str, dict[str, str], dict[str, str]]]:
    gone = absent_id()
    pairs = [
        ("Observation", {"subject": sc.patient_ref}, {"subject": f"Patient/{gone}"}),
        ("Observation", {"identifier": f"{MARKER_SYSTEM}|{sc.marker}"}, {"identifier": f"{MARKER_SYSTEM}|{gone}"}),
        ("Patient", {"_id": sc.patient_id}, {"_id": gone}),
        ("Observation", {"_id": sc.observation_id}, {"_id": gone}),
        ("Observation", {"subject": sc.patient_ref, "_summary": "count"},
         {"subject": f"Patient/{gone}", "_summary": "count"}),
        ("Observation", {"subject": sc.patient_ref, "_total": "accurate"},
         {"subject": f"Patient/{gone}", "_total": "accurate"}),
    ]
    if sc.iin:
        other = fresh_iin(sc.iin, random.Random())
        pairs.append(("Patient", {"identifier": f"{IIN_SYSTEM}|{sc.iin}"}, {"identifier": f"{IIN_SYSTEM}|{other}"}))
    return pairs


@check("ACC-02", GROUP, "Without consent, searches find nothing and count nothing of the patient's data",
       ["AC-01", "AC-12", "R4 search.html", "R4 security.html"])
async def searches_find_nothing(ctx: RunContext) -> Outcome:
    sc = await scenario(ctx)
    findings = Findings()
    for kind, hidden, absent in _search_pairs(sc):
        query = "&".join(f"{k}={v}" for k, v in hidden.items())
        await probe_pair(ctx, sc, findings, sc.unconsented, "GET", Req(kind, hidden), Req(kind, absent),
                         what=f"GET {kind}?{query}")
    # The same search sent as a POST form (R4 search.html#Introduction: GET and POST must agree).
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    await probe_pair(ctx, sc, findings, sc.unconsented, "POST",
                     Req("Observation/_search", headers=form, content=f"subject={sc.patient_ref}".encode()),
                     Req("Observation/_search", headers=form, content=f"subject=Patient/{absent_id()}".encode()),
                     what="POST Observation/_search subject=…")
    return findings.outcome("each search answered as if the patient had no data")


@check("ACC-03", GROUP, "Without consent, _include and _revinclude bring in none of the patient's data",
       ["AC-01", "AC-12", "R4 search.html#include"])
async def includes_bring_nothing(ctx: RunContext) -> Outcome:
    sc = await scenario(ctx)
    findings = Findings()
    gone = absent_id()
    visible = [("Practitioner", str(sc.consented.reference).split("/", 1)[1], "Observation:performer")]
    if sc.device_id:
        visible.append(("Device", sc.device_id, "Observation:device"))
    for kind, visible_id, revinclude in visible:
        params = {"_id": visible_id, "_revinclude": revinclude}
        response = await sc.access(ctx, sc.unconsented, "GET", kind, params=params)
        findings.judge(f"GET {kind}?_id={visible_id}&_revinclude={revinclude}", response, sc)
    await probe_pair(ctx, sc, findings, sc.unconsented, "GET",
                     Req("Observation", {"_id": sc.observation_id, "_include": "Observation:subject"}),
                     Req("Observation", {"_id": gone, "_include": "Observation:subject"}),
                     what="GET Observation?_id=…&_include=Observation:subject")
    return findings.outcome("no hidden resource came in through an include")


async def _provenance(ctx: RunContext, sc: Scenario) -> str | None:
    """A Provenance of the hidden Observation, recorded by the writer (None: the server refused it)."""
    provenance = {"resourceType": "Provenance", "target": [{"reference": sc.observation_ref}],
                  "recorded": datetime.now(UTC).isoformat(timespec="seconds"),
                  "agent": [{"who": {"reference": sc.consented.reference}}]}
    response = await sc.access(ctx, None, "POST", "Provenance", json=provenance, target="Provenance")
    new_id = created_id(response) if response.status_code in (200, 201) else None
    if new_id:
        ctx.fixtures.track("Provenance", new_id)
        sc.extra_hidden.add(f"Provenance/{new_id}")
    return new_id


@check("ACC-08", GROUP, "Without consent, records about the patient's data (Provenance) stay hidden too",
       ["AC-01", "AC-12", "R4 provenance.html"])
async def provenance_hidden(ctx: RunContext) -> Outcome:
    sc = await scenario(ctx)
    provenance_id = await _provenance(ctx, sc)
    if provenance_id is None:
        return skipped("the writer could not record a Provenance of the test Observation")
    findings = Findings()
    gone = absent_id()
    await probe_pair(ctx, sc, findings, sc.unconsented, "GET",
                     Req("Provenance", {"target": sc.observation_ref}),
                     Req("Provenance", {"target": f"Observation/{gone}"}), what="GET Provenance?target=…")
    await probe_pair(ctx, sc, findings, sc.unconsented, "GET", Req(f"Provenance/{provenance_id}"),
                     Req(f"Provenance/{gone}"), what=f"GET Provenance/{provenance_id}", read=True,
                     target=f"Provenance/{provenance_id}")
    return findings.outcome("the Provenance of a hidden resource is hidden as well")
