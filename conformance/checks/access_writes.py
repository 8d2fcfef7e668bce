"""access: without the patient's consent a practitioner cannot change or delete the patient's data by id
(AC-01: consent governs processing, not only reading; AC-12; R4 http.html#update, #patch, #delete).

"Hidden means absent" holds for writes too: update, patch and delete of the hidden record must answer
as they do for an id nothing has (a delete of nothing may well be 204, R4 http.html#delete), name
nothing of the patient, and leave the record as it was.

The writes target a second Observation of the patient, made for this check only, so a server that
lets them through destroys nothing the later checks need.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from conformance.access.judge import Findings, Req, absent_id, probe_pair
from conformance.access.scenario import Scenario, scenario
from conformance.context import RunContext
from conformance.examples import MARKER_SYSTEM, valid_example
from conformance.expect import diagnostics, expect_resource, expect_status
from conformance.http import json_body
from conformance.model import Outcome
from conformance.registry import check

GROUP = "access"
_JSON_PATCH = "application/json-patch+json"


async def _target(ctx: RunContext, sc: Scenario) -> dict[str, Any]:
    """A second hidden Observation of the patient, created by the writer and tracked for cleanup."""
    example = valid_example("Observation/kz-observation-1") or {}
    example.update(subject={"reference": sc.patient_ref}, performer=[{"reference": sc.consented.reference}],
                   identifier=[{"system": MARKER_SYSTEM, "value": uuid.uuid4().hex}])
    response = await sc.access(ctx, None, "POST", "Observation", json=await ctx.fixtures.adapt(example),
                               target="Observation")
    expect_status(ctx.client, response, 201, 200, doing="the writer creating an Observation for ACC-09")
    created = expect_resource(response, "Observation", doing="create the Observation for ACC-09")
    ctx.fixtures.track("Observation", str(created["id"]))
    sc.extra_hidden.add(f"Observation/{created['id']}")
    return created


async def _unchanged(ctx: RunContext, findings: Findings, before: dict[str, Any]) -> None:
    ref = f"Observation/{before['id']}"
    response = await ctx.client.get(ref)
    now = json_body(response) or {}
    if response.status_code != 200:
        findings.problems.append(f"{ref} is gone after the writes without consent (writer's read: "
                                 f"{response.status_code} {diagnostics(response)})")
        return
    version = (before.get("meta") or {}).get("versionId")
    changed = [k for k in ("status", "valueQuantity", "subject", "note") if now.get(k) != before.get(k)]
    if (now.get("meta") or {}).get("versionId") != version or changed:
        findings.problems.append(f"{ref} was changed by the writes without consent (version {version} -> "
                                 f"{(now.get('meta') or {}).get('versionId')}; {', '.join(changed) or 'meta'})")


def _entry_statuses(response: httpx.Response) -> list[str]:
    body = json_body(response) or {}
    return [str(((e or {}).get("response") or {}).get("status") or "")[:3] for e in body.get("entry") or []]


async def _in_a_batch(ctx: RunContext, sc: Scenario, findings: Findings, before: dict[str, Any], gone: str) -> None:
    """The same update and delete as entries of a batch (R4 http.html#transaction): each entry must be
    answered as its twin for an unknown id is, and change nothing (checked after)."""

    def batch(resource_id: str) -> dict[str, Any]:
        url = f"Observation/{resource_id}"
        changed = {**before, "id": resource_id, "status": "entered-in-error"}
        return {"resourceType": "Bundle", "type": "batch", "entry": [
            {"resource": changed, "request": {"method": "PUT", "url": url}},
            {"request": {"method": "DELETE", "url": url}}]}

    ref = f"Observation/{before['id']}"
    hidden = await sc.access(ctx, sc.unconsented, "POST", "", json=batch(str(before["id"])), target=ref, in_log=True)
    absent = await sc.access(ctx, sc.unconsented, "POST", "", json=batch(gone))
    findings.judge(f"batch of PUT and DELETE {ref}", hidden, sc)
    findings.compare(f"batch of PUT and DELETE {ref}", hidden, absent, read=False)
    got, baseline = _entry_statuses(hidden), _entry_statuses(absent)
    if got != baseline:
        findings.problems.append(f"batch of PUT and DELETE {ref}: entry statuses {got} with a hidden match, "
                                 f"{baseline} with none")


@check("ACC-09", GROUP, "Without consent, update, patch and delete of the patient's data, by id or in a batch, "
                        "answer as for an unknown id and change nothing",
       ["AC-01", "AC-12", "R4 http.html#update", "R4 http.html#patch", "R4 http.html#delete",
        "R4 http.html#transaction"])
async def direct_writes_refused(ctx: RunContext) -> Outcome:
    sc = await scenario(ctx)
    before = await _target(ctx, sc)
    ref = f"Observation/{before['id']}"
    findings, gone = Findings(), absent_id()
    changed = {**before, "status": "entered-in-error", "note": [{"text": "changed without consent"}]}
    patch = json.dumps([{"op": "replace", "path": "/status", "value": "entered-in-error"}]).encode()
    as_patch = {"Content-Type": _JSON_PATCH}
    attempts = [("update", "PUT", Req(ref, json=changed), Req(f"Observation/{gone}", json={**changed, "id": gone})),
                ("patch", "PATCH", Req(ref, content=patch, headers=as_patch),
                 Req(f"Observation/{gone}", content=patch, headers=as_patch)),
                ("delete", "DELETE", Req(ref), Req(f"Observation/{gone}"))]
    for what, method, hidden, absent in attempts:
        _, baseline = await probe_pair(ctx, sc, findings, sc.unconsented, method, hidden, absent,
                                       what=f"{what}: {method} {ref}", read=True, target=ref, in_log=True)
        if baseline.status_code in (200, 201):  # an update that created the absent id: clean it up
            ctx.fixtures.track("Observation", gone, sc.unconsented)
    await _in_a_batch(ctx, sc, findings, before, gone)
    await _unchanged(ctx, findings, before)
    return findings.outcome("each write answered as for an unknown id and the record is as it was")
