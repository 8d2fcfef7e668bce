"""access: the search paths a client can take besides the plain ones ACC-02 sends — the patient
compartment, chained and reverse-chained parameters, system-level search, ``_elements``, the pages
after the first — and the history listings. Without the patient's consent each must answer as if the patient had no data
(AC-01, AC-12; R4 search.html, compartmentdefinition.html, http.html#history)."""

from __future__ import annotations

import random

import httpx

from conformance.access.judge import Findings, Req, absent_id, probe_pair
from conformance.access.records import same_origin
from conformance.access.scenario import Scenario, scenario
from conformance.context import RunContext
from conformance.examples import IIN_SYSTEM, MARKER_SYSTEM, fresh_iin
from conformance.http import json_body
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


def _next_link(response: httpx.Response) -> str | None:
    body = json_body(response) or {}
    links = [link for link in body.get("link") or [] if isinstance(link, dict) and link.get("relation") == "next"]
    return str(links[0].get("url") or "") or None if links else None


async def _paging(ctx: RunContext, sc: Scenario, findings: Findings, gone: str) -> None:
    """A page of one: a server that pages before it filters answers an empty page with a ``next`` link
    (an oracle) or serves the hidden record on a later page (R4 http.html#paging)."""
    hidden, absent = await probe_pair(
        ctx, sc, findings, sc.unconsented, "GET", Req("Observation", {"subject": sc.patient_ref, "_count": "1"}),
        Req("Observation", {"subject": f"Patient/{gone}", "_count": "1"}), what="paging: GET Observation?_count=1")
    following = _next_link(hidden)
    if (following is None) != (_next_link(absent) is None):
        findings.problems.append("paging: a next page is offered with a hidden match and not without one")
    for _ in range(3):  # a few pages: enough to reach the patient's few records, bounded against loops
        if following is None or not same_origin(ctx, following):
            return
        page = await sc.access(ctx, sc.unconsented, "GET", following)
        findings.judge(f"paging: GET {following}", page, sc)
        following = _next_link(page)


@check("ACC-13", GROUP, "Without consent, the compartment, chained, reverse-chained and system-level searches, "
                        "later pages and the history listings disclose nothing",
       ["AC-01", "AC-12", "R4 search.html#chaining", "R4 search.html#has", "R4 compartmentdefinition.html",
        "R4 http.html#paging", "R4 http.html#history"])
async def other_paths_disclose_nothing(ctx: RunContext) -> Outcome:
    sc = await scenario(ctx)
    findings = Findings()
    gone = absent_id()
    for what, path, hidden, absent in _pairs(sc):
        absent_path = path.replace(sc.patient_id, gone)
        query = "&".join(f"{k}={v}" for k, v in (hidden or {}).items())
        await probe_pair(ctx, sc, findings, sc.unconsented, "GET", Req(path, hidden), Req(absent_path, absent),
                         what=f"{what}: GET {path}{'?' + query if query else ''}")
    await _paging(ctx, sc, findings, gone)
    # History listings have no "absent" twin: they must simply hold nothing of the patient.
    since = {"_since": sc.started.isoformat(timespec="seconds"), "_count": "100"}
    for path in ("Observation/_history", "_history"):
        response = await sc.access(ctx, sc.unconsented, "GET", path, params=since)
        findings.judge(f"GET {path}", response, sc)
    return findings.outcome("each path answered as if the patient had no data")
