"""access: the rules hold inside Bundles and for conditional interactions (AC-01, AC-12).

* Each batch/transaction entry is judged as the same request sent alone would be: a search inside a
  batch must not return what the search outside it hides.
* Conditional create/update/delete evaluate their criteria over data: the answer must be the same
  whether a hidden resource matches or nothing does (else the criteria are an oracle over hidden data),
  and the hidden resource must stay untouched.
"""

from __future__ import annotations

from typing import Any

import httpx

from conformance.access.grants import grant
from conformance.access.judge import Findings, Req, absent_id, probe_pair
from conformance.access.scenario import Scenario, scenario
from conformance.context import RunContext
from conformance.examples import MARKER_SYSTEM, valid_example
from conformance.expect import diagnostics
from conformance.fixtures import created_id
from conformance.http import json_body
from conformance.identities import Identity
from conformance.model import Outcome
from conformance.registry import check

GROUP = "access"


def _bundle(kind: str, urls: list[str]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind,
            "entry": [{"request": {"method": "GET", "url": url}} for url in urls]}


def _entry_urls(sc: Scenario, patient: str, observation: str, marker: str) -> list[str]:
    return [f"Observation/{observation}", f"Patient/{patient}", f"Observation?subject=Patient/{patient}",
            f"Observation?identifier={MARKER_SYSTEM}|{marker}", f"Observation?_id={observation}"]


def _entry_answers(response: httpx.Response) -> list[tuple[str, int | None, int]]:
    """(status, total, entries) of each entry response: what must not differ between the two Bundles."""
    body = json_body(response) or {}
    answers = []
    for entry in body.get("entry") or []:
        if not isinstance(entry, dict):
            continue
        status = str((entry.get("response") or {}).get("status") or "")[:3]
        resource = entry.get("resource")
        nested: dict[str, Any] = resource if isinstance(resource, dict) else {}
        total = nested.get("total") if isinstance(nested.get("total"), int) else None
        answers.append((status, total, len(nested.get("entry") or [])))
    return answers


def _compare_entries(findings: Findings, kind: str, urls: list[str], hidden: httpx.Response,
                     absent: httpx.Response) -> None:
    if hidden.status_code != absent.status_code:
        findings.problems.append(f"{kind}: HTTP {hidden.status_code} with hidden matches, "
                                 f"{absent.status_code} with none")
        return
    for url, got, baseline in zip(urls, _entry_answers(hidden), _entry_answers(absent), strict=False):
        if got == baseline:
            continue
        text = f"{kind} entry GET {url}: (status, total, entries) {got} with a hidden match, {baseline} with none"
        by_id = "?" not in url
        if by_id and (got[0], baseline[0]) == ("403", "404"):
            findings.remarks.append(text)
        else:
            findings.problems.append(text)


@check("ACC-04", GROUP, "Without consent, batch and transaction entries disclose nothing",
       ["AC-01", "AC-12", "R4 http.html#transaction", "R4 bundle.html"])
async def bundle_entries_disclose_nothing(ctx: RunContext) -> Outcome:
    sc = await scenario(ctx)
    findings = Findings()
    gone = absent_id()
    hidden_urls = _entry_urls(sc, sc.patient_id, sc.observation_id, sc.marker)
    absent_urls = _entry_urls(sc, gone, gone, gone)
    for kind in ("batch", "transaction"):
        hidden = await sc.access(ctx, sc.unconsented, "POST", "", json=_bundle(kind, hidden_urls),
                                 target=sc.observation_ref, in_log=True)
        absent = await sc.access(ctx, sc.unconsented, "POST", "", json=_bundle(kind, absent_urls))
        findings.judge(f"{kind} of {len(hidden_urls)} GET entries", hidden, sc)
        _compare_entries(findings, kind, hidden_urls, hidden, absent)
    return findings.outcome("each entry answered as when sent alone, nothing hidden disclosed")


async def _observation_for(ctx: RunContext, patient: str, marker: str) -> dict[str, Any]:
    """A valid KZ Observation for ``patient``: no server may refuse it for its content, so a refusal of
    one side only comes from the criteria."""
    example = valid_example("Observation/kz-observation-1") or {}
    example.update(subject={"reference": patient}, identifier=[{"system": MARKER_SYSTEM, "value": marker}])
    return await ctx.fixtures.adapt(example)


async def _writable_patient(ctx: RunContext, sc: Scenario) -> tuple[str, Identity | None]:
    """The patient whose data the unconsented practitioner may write: the second patient, once they
    consent to it. Without one, an unknown patient: both conditional answers are then refusals."""
    other = sc.other_patient
    if other is None or other.reference is None:
        return f"Patient/{absent_id()}", None
    if sc.other_consent_id is None:
        sc.other_consent_id = await grant(ctx, sc, other, sc.unconsented, other.reference)
    return other.reference, other


def _track(ctx: RunContext, sc: Scenario, response: httpx.Response) -> None:
    new_id = created_id(response) if response.status_code in (200, 201) else None
    if new_id and new_id != sc.observation_id:
        ctx.fixtures.track("Observation", new_id, sc.unconsented)


async def _untouched(ctx: RunContext, sc: Scenario, findings: Findings, version: str | None) -> None:
    response = await ctx.client.get(sc.observation_ref)
    body = json_body(response) or {}
    now = (body.get("meta") or {}).get("versionId")
    subject = (body.get("subject") or {}).get("reference")
    if response.status_code != 200:
        findings.problems.append(f"the hidden {sc.observation_ref} is gone after the conditional writes "
                                 f"(writer's read: {response.status_code} {diagnostics(response)})")
    elif now != version or subject != sc.patient_ref:
        findings.problems.append(f"the hidden {sc.observation_ref} was changed by the conditional writes "
                                 f"(version {version} -> {now}, subject {subject})")


@check("ACC-05", GROUP, "Conditional create, update and delete answer alike whether a hidden resource "
       "matches or nothing does, and leave it untouched", ["AC-01", "AC-12", "R4 http.html#ccreate"])
async def conditional_writes_no_oracle(ctx: RunContext) -> Outcome:
    sc = await scenario(ctx)
    before = json_body(await ctx.client.get(sc.observation_ref)) or {}
    patient, _ = await _writable_patient(ctx, sc)
    findings, gone = Findings(), absent_id()
    hit, miss = f"identifier={MARKER_SYSTEM}|{sc.marker}", f"identifier={MARKER_SYSTEM}|{gone}"
    body = await _observation_for(ctx, patient, absent_id())
    pairs = [("POST", Req("Observation", json=body, headers={"If-None-Exist": hit}),
              Req("Observation", json=body, headers={"If-None-Exist": miss}), "conditional create"),
             ("PUT", Req(f"Observation?{hit}", json=body), Req(f"Observation?{miss}", json=body),
              "conditional update"),
             ("DELETE", Req(f"Observation?{hit}"), Req(f"Observation?{miss}"), "conditional delete")]
    for method, hidden, absent, what in pairs:
        got, baseline = await probe_pair(ctx, sc, findings, sc.unconsented, method, hidden, absent, what=what,
                                         target=sc.observation_ref)
        _track(ctx, sc, got)
        _track(ctx, sc, baseline)
    await _untouched(ctx, sc, findings, (before.get("meta") or {}).get("versionId"))
    note = "" if sc.other_patient else " (no second patient: both sides are refusals, a weaker comparison)"
    return findings.outcome(f"the criteria disclosed nothing and changed nothing{note}")

