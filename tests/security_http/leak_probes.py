"""The paths a caller can reach data by, as probes for the no-leak property test (issue 10 "Proof").

Each probe sends what a hostile caller would and returns what came back: the resources (every entry of
every page, includes and Bundle-entry answers unpacked) and, for a hidden target, the answer next to the
answer for an unknown id. ``ROUTES`` maps every route the app registers to the probe that covers it, and
``OPERATIONS`` every registered operation, so that tests/security_http/test_route_inventory.py fails when a
new route or operation ships without a probe.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.conftest import BASE

FHIR_JSON = {"content-type": "application/fhir+json"}
UNKNOWN = "no-such-id"


@dataclass
class Seen:
    """What one caller got back over all probes."""

    resources: list[dict[str, Any]] = field(default_factory=list)
    # (probe, answer for the hidden target, answer for an unknown one): must be equal
    pairs: list[tuple[str, tuple[int, str], tuple[int, str]]] = field(default_factory=list)
    totals: list[str] = field(default_factory=list)  # probes whose filtered Bundle carried a total
    exported: list[dict[str, Any]] = field(default_factory=list)  # lines of $export files


def _unpack(body: Any, seen: Seen, probe: str) -> None:
    if not isinstance(body, dict):
        return
    if body.get("resourceType") == "Bundle":
        if body.get("type") == "searchset" and "total" in body:
            seen.totals.append(probe)
        for entry in body.get("entry", []) or []:
            resource = entry.get("resource")
            if isinstance(resource, dict):
                if resource.get("resourceType") in ("Bundle", "OperationOutcome", "Parameters"):
                    _unpack(resource, seen, probe)
                else:
                    seen.resources.append(resource)
    elif body.get("resourceType") == "Parameters":
        for parameter in body.get("parameter", []) or []:
            if isinstance(parameter.get("resource"), dict):
                _unpack(parameter["resource"], seen, probe)
    elif body.get("resourceType") not in (None, "OperationOutcome"):
        seen.resources.append(body)


def answer(response: httpx.Response, hidden_id: str) -> tuple[int, str]:
    """Status and diagnostics with the probed id taken out (an unknown id is named as the caller wrote it)."""
    try:
        body = response.json()
    except json.JSONDecodeError:
        return response.status_code, ""
    text = ""
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        text = " | ".join(str(i.get("diagnostics", "")) for i in body.get("issue", []))
    elif isinstance(body, dict) and body.get("resourceType") == "Bundle" and body.get("type", "").endswith("response"):
        text = " | ".join(str(e.get("response", {}).get("status")) + " " +
                          " ".join(str(i.get("diagnostics", "")) for i in
                                   (e.get("response", {}).get("outcome") or {}).get("issue", []))
                          for e in body.get("entry", []))
    return response.status_code, text.replace(hidden_id, "<id>").replace(UNKNOWN, "<id>")


class Prober:
    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str], seen: Seen) -> None:
        self.c = client
        self.h = headers
        self.seen = seen

    async def get_all(self, probe: str, url: str, *, pages: int = 20) -> None:
        """GET and follow ``next`` links; every resource of every page is kept."""
        current: str | None = url
        while current and pages:
            r = await self.c.get(current, headers=self.h)
            if r.status_code != 200:
                return
            body = r.json()
            _unpack(body, self.seen, probe)
            nxt = [lk["url"] for lk in body.get("link", []) if lk.get("relation") == "next"]
            current = nxt[0].removeprefix(BASE) if nxt else None
            pages -= 1

    async def pair(self, probe: str, send: Callable[[str], Awaitable[httpx.Response]], hidden: str) -> None:
        """The same request for a hidden target and for an unknown one: the answers must not differ."""
        first = await send(hidden)
        _unpack(first.json() if first.content and first.headers.get("content-type", "").find("json") >= 0 else None,
                self.seen, probe)
        second = await send(UNKNOWN)
        self.seen.pairs.append((probe, answer(first, hidden), answer(second, hidden)))

    async def bundle(self, kind: str, entries: list[dict[str, Any]]) -> httpx.Response:
        return await self.c.post("/", json={"resourceType": "Bundle", "type": kind, "entry": entries},
                                 headers={**self.h, **FHIR_JSON})


def _get(url: str) -> dict[str, Any]:
    return {"request": {"method": "GET", "url": url}}


def _patch_binary(ops: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Binary", "contentType": "application/json-patch+json",
            "data": base64.b64encode(json.dumps(ops).encode()).decode()}


# -- the probes -------------------------------------------------------------------------------------------
async def searches(p: Prober, patients: list[str], obs: list[str]) -> None:
    urls = ["/Observation?_include=Observation:subject&_include=Observation:performer&_count=2",
            "/Condition?_revinclude=Observation:subject", "/Patient?_revinclude=Condition:subject",
            "/Patient?_revinclude:iterate=Observation:subject&_revinclude:iterate=Provenance:target",
            "/Provenance?_include=Provenance:target", "/Group?_include=Group:member",
            "/Encounter?_revinclude=Observation:encounter&_count=1", "/?_type=Observation,Condition,Patient",
            "/Consent", "/Provenance?target=Observation/" + obs[0], "/Observation?code=x&_sort=-date&_count=1"]
    urls += [f"/Observation?subject=Patient/{pid}" for pid in patients]
    urls += [f"/Patient/{pid}/Observation" for pid in patients] + [f"/Patient/{pid}/*" for pid in patients]
    for url in urls:
        await p.get_all("search", url)
    r = await p.c.post("/Observation/_search", content=b"_count=3", headers={
        **p.h, "content-type": "application/x-www-form-urlencoded"})
    _unpack(r.json(), p.seen, "search-post")
    r = await p.c.post("/_search", content=b"_type=Condition", headers={
        **p.h, "content-type": "application/x-www-form-urlencoded"})
    _unpack(r.json(), p.seen, "search-post")


async def histories(p: Prober, hidden: list[tuple[str, str]]) -> None:
    for url in ("/_history", "/Observation/_history", "/Patient/_history?_count=2", "/Provenance/_history"):
        await p.get_all("history", url)
    for rtype, rid in hidden:
        await p.pair("history-instance", lambda i, t=rtype: p.c.get(f"/{t}/{i}/_history", headers=p.h), rid)
        await p.pair("vread", lambda i, t=rtype: p.c.get(f"/{t}/{i}/_history/1", headers=p.h), rid)


async def reads(p: Prober, world: list[dict[str, Any]], hidden: list[tuple[str, str]]) -> None:
    for resource in world:
        r = await p.c.get(f"/{resource['resourceType']}/{resource['id']}", headers=p.h)
        if r.status_code == 200:
            _unpack(r.json(), p.seen, "read")
    for rtype, rid in hidden:
        await p.pair("read", lambda i, t=rtype: p.c.get(f"/{t}/{i}", headers=p.h), rid)
        await p.pair("read-conditional", lambda i, t=rtype: p.c.get(
            f"/{t}/{i}", headers={**p.h, "If-None-Match": 'W/"1"'}), rid)


async def operations(p: Prober, hidden: list[tuple[str, str]], patients_hidden: list[str]) -> None:
    for pid in patients_hidden:
        for op in ("$everything", "$access-log", "$notifications", "$data-report", "$access-report"):
            await p.pair(f"Patient/{op}", lambda i, o=op: p.c.get(f"/Patient/{i}/{o}", headers=p.h), pid)
        params = {"resourceType": "Parameters", "parameter": [{"name": "kind", "valueCode": "information"}]}
        await p.pair("Patient/$data-subject-request", lambda i, body=params: p.c.post(
            f"/Patient/{i}/$data-subject-request", json=body, headers={**p.h, **FHIR_JSON}), pid)
    for rtype, rid in hidden:
        await p.pair("$validate", lambda i, t=rtype: p.c.get(f"/{t}/{i}/$validate", headers=p.h), rid)
        if rtype == "Encounter":
            await p.pair("$nehp-submit", lambda i: p.c.post(
                f"/Encounter/{i}/$nehp-submit", json={"resourceType": "Parameters"}, headers={**p.h, **FHIR_JSON}),
                rid)
            for op in ("$consultation-start", "$consultation-join", "$consultation-end"):
                await p.pair(f"Encounter/{op}", lambda i, o=op: p.c.post(
                    f"/Encounter/{i}/{o}", json={"resourceType": "Parameters"}, headers={**p.h, **FHIR_JSON}), rid)
        if rtype == "Group":
            await p.pair("Group/$export", lambda i: p.c.get(
                f"/Group/{i}/$export", headers={**p.h, "Prefer": "respond-async"}), rid)
        if rtype == "Task":
            done = {"resourceType": "Parameters", "parameter": [{"name": "outcome", "valueCode": "completed"}]}
            await p.pair("Task/$dsr-answer", lambda i, body=done: p.c.post(
                f"/Task/{i}/$dsr-answer", json=body, headers={**p.h, **FHIR_JSON}), rid)
        if rtype == "Bundle":
            await p.pair("Bundle/$verify-signature", lambda i: p.c.get(f"/Bundle/{i}/$verify-signature",
                                                                       headers=p.h), rid)
    await exports(p)


async def exports(p: Prober) -> None:
    """System and Patient-level $export: kick-off, poll, download every file."""
    for url in ("/$export?_type=Observation,Condition,Patient,Provenance,Group,Encounter", "/Patient/$export"):
        r = await p.c.get(url, headers={**p.h, "Prefer": "respond-async"})
        if r.status_code != 202:
            continue
        status = r.headers["content-location"].removeprefix(BASE)
        for _ in range(200):
            done = await p.c.get(status, headers=p.h)
            if done.status_code != 202:
                break
            await asyncio.sleep(0.05)
        if done.status_code != 200:
            continue
        for output in done.json().get("output", []):
            file = await p.c.get(output["url"].removeprefix(BASE), headers=p.h)
            for line in file.content.splitlines():
                if line.strip():
                    p.seen.exported.append(json.loads(line))


async def bundles(p: Prober, hidden: list[tuple[str, str]], patients_hidden: list[str], obs: list[str]) -> None:
    """Every Bundle entry method inside a batch and a transaction."""
    entries = [_get("Observation?_include=Observation:subject"), _get("Patient?_revinclude=Observation:subject"),
               _get("Observation/_history"), _get("_history"), _get("Condition?_count=1")]
    entries += [_get(f"Patient/{pid}/$everything") for pid in patients_hidden]
    entries += [_get(f"Patient/{pid}/Observation") for pid in patients_hidden]
    for kind in ("batch", "transaction"):
        r = await p.bundle(kind, entries)
        _unpack(r.json(), p.seen, f"{kind}-get")
        for rtype, rid in hidden:
            for method, url in (("GET", f"{rtype}/{{}}"), ("HEAD", f"{rtype}/{{}}"),
                                ("GET", f"{rtype}/{{}}/_history"), ("GET", f"{rtype}/{{}}/_history/1"),
                                ("GET", f"{rtype}?_id={{}}"), ("GET", f"{rtype}/{{}}/$validate")):
                await p.pair(f"{kind}-{method}", lambda i, m=method, u=url, k=kind: p.bundle(
                    k, [{"request": {"method": m, "url": u.format(i)}}]), rid)
    for rtype, rid in hidden:
        await writes(p, rtype, rid)


async def writes(p: Prober, rtype: str, rid: str) -> None:
    """Conditional forms and writes to a hidden id, directly and in Bundles: the answer must be the one for
    an unknown id (nothing matched, nothing changed), whatever the caller may write."""
    body = {"resourceType": rtype, "id": UNKNOWN}
    if rtype in ("Observation",):
        body = {"resourceType": "Observation", "status": "final", "code": {"text": "probe"}}
    elif rtype in ("Condition",):
        body = {"resourceType": "Condition", "code": {"text": "probe"}}
    elif rtype == "Patient":
        body = {"resourceType": "Patient", "gender": "unknown"}
    else:
        return
    patch = [{"op": "replace", "path": "/id", "value": "x"}]
    c, h = p.c, {**p.h, **FHIR_JSON}
    await p.pair("create-conditional", lambda i: c.post(f"/{rtype}", json=body, headers={
        **h, "If-None-Exist": f"_id={i}"}), rid)
    await p.pair("update-conditional", lambda i: c.put(f"/{rtype}?_id={i}", json=body, headers=h), rid)
    await p.pair("patch-conditional", lambda i: c.patch(f"/{rtype}?_id={i}", json=patch, headers={
        **p.h, "content-type": "application/json-patch+json"}), rid)
    await p.pair("delete-conditional", lambda i: c.delete(f"/{rtype}?_id={i}", headers=p.h), rid)
    await p.pair("update", lambda i: c.put(f"/{rtype}/{i}", json={**body, "id": i}, headers=h), rid)
    await p.pair("patch", lambda i: c.patch(f"/{rtype}/{i}", json=patch, headers={
        **p.h, "content-type": "application/json-patch+json"}), rid)
    await p.pair("delete", lambda i: c.delete(f"/{rtype}/{i}", headers=p.h), rid)
    await p.pair("$import", lambda i: imported_line(p, {**body, "id": i}), rid)
    for kind in ("batch", "transaction"):
        for entry in ({"resource": body, "request": {"method": "POST", "url": rtype, "ifNoneExist": "_id={}"}},
                      {"resource": body, "request": {"method": "PUT", "url": f"{rtype}?_id={{}}"}},
                      {"resource": _patch_binary(patch), "request": {"method": "PATCH", "url": f"{rtype}/{{}}"}},
                      {"request": {"method": "DELETE", "url": f"{rtype}?_id={{}}"}},
                      {"request": {"method": "DELETE", "url": f"{rtype}/{{}}"}}):
            def send(i: str, e: dict[str, Any] = entry, k: str = kind) -> Awaitable[httpx.Response]:
                filled = json.loads(json.dumps(e).replace("{}", i))
                return p.bundle(k, [filled])

            await p.pair(f"{kind}-{entry['request']['method']}", send, rid)


async def imported_line(p: Prober, resource: dict[str, Any]) -> httpx.Response:
    """``$import`` of one NDJSON line (an update of its id): the answer is the job's outcome for the line (its
    error file's OperationOutcome, or the manifest when it was imported), then the job is deleted."""
    r = await p.c.post("/$import", content=json.dumps(resource).encode() + b"\n", headers={
        **p.h, "Prefer": "respond-async", "content-type": "application/fhir+ndjson"})
    if r.status_code != 202:
        return r
    status = r.headers["content-location"].removeprefix(BASE)
    for _ in range(200):
        done = await p.c.get(status, headers=p.h)
        if done.status_code != 202:
            break
        await asyncio.sleep(0.05)
    result = done
    if done.status_code == 200 and done.json().get("error"):
        file = await p.c.get(done.json()["error"][0]["url"].removeprefix(BASE), headers=p.h)
        result = httpx.Response(422, content=file.content.splitlines()[0], headers={"content-type": "application/json"})
    elif done.status_code == 200:
        result = httpx.Response(200, json={"imported": done.json()["output"][0]["count"]})
    await p.c.delete(status, headers=p.h)
    return result


#: every route the app registers -> the probe above that reaches it (the inventory test keeps this whole)
ROUTES: dict[str, str] = {
    "GET /{resource_type}/{resource_id}": "reads",
    "GET /{resource_type}/{resource_id}/_history/{version}": "histories",
    "GET /{resource_type}/{resource_id}/_history": "histories",
    "PUT /{resource_type}/{resource_id}": "writes",
    "PATCH /{resource_type}/{resource_id}": "writes",
    "DELETE /{resource_type}/{resource_id}": "writes",
    "GET /{resource_type}/_history": "histories",
    "POST /{resource_type}": "writes",
    "PUT /{resource_type}": "writes",
    "PATCH /{resource_type}": "writes",
    "DELETE /{resource_type}": "writes",
    "GET /": "searches",
    "POST /_search": "searches",
    "GET /{resource_type}": "searches",
    "POST /{resource_type}/_search": "searches",
    "GET /{compartment_type}/{compartment_id}/{resource_type}": "searches",
    "POST /": "bundles",
    "GET /_history": "histories",
    "GET /${name}": "operations",
    "POST /${name}": "operations",
    "GET /{resource_type}/${name}": "operations",
    "POST /{resource_type}/${name}": "operations",
    "GET /{resource_type}/{resource_id}/${name}": "operations",
    "POST /{resource_type}/{resource_id}/${name}": "operations",
    "GET /$export": "exports", "POST /$export": "exports",
    "GET /Patient/$export": "exports", "POST /Patient/$export": "exports",
    "GET /Group/{group_id}/$export": "operations", "POST /Group/{group_id}/$export": "operations",
    "GET /$export-status/{job_id}": "exports", "DELETE /$export-status/{job_id}": "exports",
    "GET /$export-file/{job_id}/{name}": "exports",
    "POST /$import": "writes", "GET /$import-status/{job_id}": "writes", "DELETE /$import-status/{job_id}": "writes",
    "GET /$import-file/{job_id}/{name}": "writes",
}

#: routes that hold no patient data, and why (answered without reading any resource)
PUBLIC: dict[str, str] = {
    "GET /metadata": "the CapabilityStatement",
    "GET /openapi.json": "the OpenAPI document generated from the CapabilityStatement",
}

#: every registered operation (level, type, name) -> the probe that calls it on hidden data, or why none
OPERATIONS: dict[tuple[str, str, str], str] = {
    ("instance", "*", "validate"): "operations",
    ("type", "*", "validate"): "no stored data: validates the body it is given",
    ("instance", "Bundle", "verify-signature"): "operations",
    ("type", "Bundle", "verify-signature"): "no stored data: verifies the Bundle it is given",
    ("instance", "Encounter", "nehp-submit"): "operations",
    ("instance", "Encounter", "consultation-start"): "operations",
    ("instance", "Encounter", "consultation-join"): "operations",
    ("instance", "Encounter", "consultation-end"): "operations",
    ("instance", "Group", "export"): "operations",
    ("type", "Patient", "export"): "exports",
    ("system", "*", "export"): "exports",
    ("system", "*", "import"): "writes",
    ("instance", "Patient", "access-log"): "operations",
    ("instance", "Patient", "access-report"): "operations",
    ("instance", "Patient", "data-report"): "operations",
    ("instance", "Patient", "data-subject-request"): "operations",
    ("instance", "Patient", "everything"): "operations",
    ("instance", "Patient", "notifications"): "operations",
    ("instance", "Task", "dsr-answer"): "operations",
    ("instance", "Subscription", "status"): "owner only: tests/subscriptions/test_security.py pairs hidden, unknown",
    ("instance", "Subscription", "events"): "owner only: tests/subscriptions/test_security.py pairs hidden, unknown",
    ("instance", "Subscription", "get-ws-binding-token"):
        "owner only: tests/subscriptions/test_websocket.py, another's answers 404 as an unknown id",
    ("type", "Subscription", "get-ws-binding-token"): "owner only: each id is read like the instance form",
    ("type", "Subscription", "status"): "the caller's own only: tests/subscriptions/test_operations.py, others 404",
    ("system", "*", "dsr-overdue"): "oversight only: refused by the gate to every role but admin",
    ("instance", "Patient", "expunge"): "oversight only: refused to every role but admin, and destroys, never shows",
    ("type", "AuditEvent", "access-flags"): "oversight only: refused by the gate to every role but auditor and admin",
    ("type", "Consent", "egov-consent"): "writes only, for the system role with a signed message; answers an id",
    ("system", "*", "deliveries"): "oversight only: refused to every role but admin; outbox rows, no payloads",
    ("system", "*", "conformance-run"): "oversight only: refused to every role but admin; starts a kit run",
    ("system", "*", "conformance-runs"): "oversight only: refused to every role but admin; kit reports, no patients",
    ("type", "AuditEvent", "audit-verify"): "oversight only: refused to all but admins and auditors; no patient data",
    ("instance", "Patient", "block"): "oversight only: refused to every role but admin, and hides, never shows",
    ("instance", "Patient", "unblock"): "oversight only: refused to every role but admin; returns the block Flag",
    ("instance", "CodeSystem", "validate-code"): "terminology: directory data, no patient's",
    ("type", "CodeSystem", "validate-code"): "terminology: directory data, no patient's",
    ("type", "CodeSystem", "lookup"): "terminology: directory data, no patient's",
    ("instance", "ConceptMap", "translate"): "terminology: directory data, no patient's",
    ("type", "ConceptMap", "translate"): "terminology: directory data, no patient's",
    ("instance", "ValueSet", "expand"): "terminology: directory data, no patient's",
    ("type", "ValueSet", "expand"): "terminology: directory data, no patient's",
    ("instance", "ValueSet", "validate-code"): "terminology: directory data, no patient's",
    ("type", "ValueSet", "validate-code"): "terminology: directory data, no patient's",
}

#: Bundle entry methods and the probes that send each inside a batch and a transaction
ENTRY_METHODS: dict[str, str] = {"GET": "bundles", "HEAD": "bundles", "POST": "writes", "PUT": "writes",
                                 "PATCH": "writes", "DELETE": "writes"}
