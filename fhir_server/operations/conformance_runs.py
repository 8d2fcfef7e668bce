"""``POST [base]/$conformance-run`` and ``GET [base]/$conformance-runs``: the conformance kit (issue 18,
``conformance/``, docs/conformance-kit.md) run against this server, for administrators, with the asynchronous
request pattern (FHIR R4 async.html, as ``$export``).

**Starting a run.** ``POST $conformance-run`` with a ``Parameters``: ``writer`` (required) is the bearer token the
kit acts with, an MIS back-end client's (the kit's ``--token``; the server mints nothing for it); ``only`` (0..*) a
group or check ID (the kit's ``--only``; none is a full, certification run); ``operator`` who runs it (default the
caller's fhirUser). The answer is ``202 Accepted`` with ``Content-Location: [base]/$conformance-runs?run=[id]``.
The kit then runs in this process as any client would: over HTTP semantics through the application's outermost
layer (httpx's ASGI transport, as the portal calls the API), so every one of its requests passes the limits,
the policy, consent and the audit as the writer's. One run at a time per server process (409 otherwise).

**How runs are recorded.** Each run is a background job (the jobs table, kind ``conformance-run``): while it
runs, who asked for it, when, which checks; when it ends, the kit's verdict, exit code and the checks' summary.
Its results go in a second job row beside it (kind ``conformance-report``, id ``[run id]-report``, so listing
runs never reads reports): the verdict per requirement and the kit's whole JSON report (the same document
``--report-json`` writes). The
writer token is never recorded (the report names the token's claims only, as the kit always does). The newest
:data:`KEEP` runs are kept. A run cut off by a shutdown is recorded failed; one whose process died is shown
failed once :data:`RUN_DEADLINE_SECONDS` have passed.

**Reading runs.** ``GET $conformance-runs`` lists them newest first (``Parameters``, one ``run`` each, without
the report); ``GET $conformance-runs?run=[id]`` is one run: ``202`` with ``X-Progress`` while it runs, then
``200`` with its ``requirement`` verdicts, its ``check`` results and the ``report`` (JSON, as an attachment).

Both are administrators' operations (``PolicySettings.admin_operations``); anyone else gets an audited 403.
Every start and every read is audited under the caller.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from fhir_server.errors import FhirError
from fhir_server.interactions.base import FhirResponse, Services
from fhir_server.jsonio import dumps
from fhir_server.operations.patient_ops import query_text, reject_unknown
from fhir_server.operations.registry import OperationCall, operation
from fhir_server.security.audit.balp import AuditTarget
from fhir_server.security.policy import Decision, Verdict
from fhir_server.storage.protocols import Store

KIND = "conformance-run"
REPORT_KIND = "conformance-report"
KEEP = 50
RUN_DEADLINE_SECONDS = 3600.0
STATES = ("running", "done", "failed")
log = logging.getLogger("kzfhir.conformance_runs")
_RUNNING: dict[str, tuple[asyncio.Task[None], Store]] = {}  # run id -> the task running it (this process)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


async def _gate(call: OperationCall, known: frozenset[str]) -> AuditTarget:
    if any(name == "writer" for name, _ in call.query):
        raise FhirError("invalid", "writer is a bearer token: POST it in the Parameters body, never in the URL",
                        code="security", expression="writer")
    reject_unknown(call, known)
    target = AuditTarget("operation", query=query_text(call))  # the URL's inputs: the token is in the body
    if call.access.enabled and call.start.decision is not Decision.AUTHORIZED:
        await call.access.deny(target, Verdict.reject(f"${call.name} is for administrators"))
    return target


async def _runs(store: Store) -> list[dict[str, Any]]:
    """Every recorded run, newest first; a run past its deadline that no process finished is failed."""
    found: list[dict[str, Any]] = []
    for state in STATES:
        found += [orjson.loads(data) for _, data in await store.list_jobs(KIND, state)]
    for run in found:
        if run.get("status") == "running" and run["id"] not in _RUNNING and \
                time.time() - float(run.get("startedEpoch", 0)) > RUN_DEADLINE_SECONDS:
            run |= {"status": "failed", "error": "no result before the deadline: the process running it stopped"}
    return sorted(found, key=lambda r: str(r.get("started", "")), reverse=True)


def _checks(call: OperationCall) -> list[str]:
    from conformance import select

    only = [str(v) for v in call.params().get("only") or []]
    if any(not isinstance(v, str) or not v or len(v) > 40 for v in call.params().get("only") or []):
        raise FhirError("invalid", "only names a group or a check ID", code="value", expression="only")
    try:
        select(only or None)
    except ValueError as error:
        raise FhirError("invalid", str(error), code="value", expression="only") from None
    return only


@operation("conformance-run", levels=("system",))
async def conformance_run(call: OperationCall) -> FhirResponse:
    target = await _gate(call, frozenset({"writer", "only", "operator"}))
    if call.method != "POST":
        raise FhirError("method_not_allowed", "$conformance-run starts a run: POST a Parameters", code="not-supported")
    writer = call.one("writer")
    if not isinstance(writer, str) or not writer.strip() or len(writer) > 16_384:
        raise FhirError("invalid", "writer (the bearer token the kit acts with) is required", code="required",
                        expression="writer")
    checks = _checks(call)
    operator_name = call.one("operator")
    operator_name = str(operator_name)[:200] if operator_name else (call.ctx.fhir_user or call.ctx.subject or "")
    services = call.services
    store = call.access.records
    if any(task_store is store for _, task_store in _RUNNING.values()):
        raise FhirError("conflict", "a conformance run is already running on this server process", code="conflict")
    app = services.client_app
    if app is None:
        raise FhirError("not_implemented", "this server has no in-process client transport", code="not-supported")
    run_id = uuid.uuid4().hex
    record = {"id": run_id, "status": "running", "started": _now(), "startedEpoch": time.time(),
              "requestedBy": call.ctx.fhir_user or call.ctx.subject or "", "operator": operator_name,
              "checks": checks, "base": call.base_url}
    older = (await _runs(store))[KEEP - 1:]

    def begin(view: Any) -> None:
        view.put_job(run_id, KIND, "running", orjson.dumps(record))
        for old in older:
            if old.get("status") != "running":
                view.delete_job(str(old["id"]))
                view.delete_job(f"{old['id']}-report")

    await store.transaction(begin)
    task = asyncio.create_task(_execute(services, store, app, record, writer.strip()))
    _RUNNING[run_id] = (task, store)
    task.add_done_callback(lambda _: _RUNNING.pop(run_id, None))
    call.access.record(target, call.start, ())
    await call.access.flush()
    location = f"{call.base_url}/$conformance-runs?run={run_id}"
    return FhirResponse(202, None, {"Content-Location": location})


async def _execute(services: Services, store: Store, app: Any, record: dict[str, Any], writer: str) -> None:
    from conformance import run

    outcome: dict[str, Any]
    try:
        report = await run(record["base"], token=writer, checks=record["checks"] or None,
                           transport=httpx.ASGITransport(app=app), operator=record["operator"], record_wait=5.0)
        outcome = {"status": "done", "finished": _now(), "verdict": report.verdict, "exitCode": report.exit_code,
                   "summary": report.summary()}
        results = {"report": report.to_dict(), "requirements": [
            {"id": v.id, "title": v.title, "verdict": v.verdict.value, "why": v.why, "critical": v.critical}
            for v in report.requirements]}
    except asyncio.CancelledError:
        outcome = {"status": "failed", "finished": _now(), "error": "the server stopped during the run"}
        with contextlib.suppress(Exception):
            await _finish(store, record, outcome)
        raise
    except Exception as error:  # a kit defect is the run's result, never the server's failure
        log.exception("conformance run %s failed", record["id"])
        outcome = {"status": "failed", "finished": _now(), "error": f"{type(error).__name__}: {error}"}
        results = None
    await _finish(store, record, outcome, results)


async def _finish(store: Store, record: dict[str, Any], outcome: dict[str, Any],
                  results: dict[str, Any] | None = None) -> None:
    done = {**record, **outcome}

    def write(view: Any) -> None:
        if results is not None:  # with the run's record, in one unit: a finished run always has its results
            view.put_job(f"{record['id']}-report", REPORT_KIND, "done", orjson.dumps(results))
        view.put_job(record["id"], KIND, str(done["status"]), orjson.dumps(done))

    await store.transaction(write)


async def stop_runs(store: Store) -> None:
    """At shutdown: cancel this process's runs on ``store``; each is recorded failed."""
    tasks = [task for task, task_store in list(_RUNNING.values()) if task_store is store]
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def _summary(run: dict[str, Any]) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [
        {"name": "id", "valueString": run["id"]}, {"name": "status", "valueCode": run["status"]},
        {"name": "started", "valueInstant": run["started"]},
        {"name": "requestedBy", "valueString": run.get("requestedBy", "")},
        {"name": "operator", "valueString": run.get("operator", "")},
        *({"name": "only", "valueString": c} for c in run.get("checks") or [])]
    for name, kind in (("finished", "valueInstant"), ("verdict", "valueString"), ("exitCode", "valueInteger"),
                       ("error", "valueString")):
        if run.get(name) not in (None, ""):
            parts.append({"name": name, kind: run[name]})
    for status, n in (run.get("summary") or {}).items():
        parts.append({"name": "checks", "part": [{"name": "status", "valueCode": status},
                                                 {"name": "count", "valueInteger": n}]})
    return {"name": "run", "part": parts}


@operation("conformance-runs", levels=("system",))
async def conformance_runs(call: OperationCall) -> FhirResponse:
    target = await _gate(call, frozenset({"run"}))
    store = call.access.records
    wanted = call.one("run")
    runs = await _runs(store)
    if wanted is None:
        call.access.record(target, call.start, ())
        await call.access.flush()
        body = {"resourceType": "Parameters", "parameter": [_summary(r) for r in runs]}
        return FhirResponse(200, dumps(body, pretty=call.pretty))
    run = next((r for r in runs if r["id"] == str(wanted)), None)
    if run is None:
        raise FhirError("not_found", f"no conformance run {wanted}", code="not-found", expression="run")
    call.access.record(target, call.start, ())
    await call.access.flush()
    if run["status"] == "running":
        return FhirResponse(202, None, {"X-Progress": f"running since {run['started']}", "Retry-After": "5"})
    stored = await store.get_job(f"{run['id']}-report")
    results: dict[str, Any] = orjson.loads(stored[3]) if stored is not None else {}
    params = [_summary(run)["part"], [
        {"name": "requirement", "part": [{"name": "id", "valueString": v["id"]},
                                         {"name": "title", "valueString": v["title"]},
                                         {"name": "verdict", "valueCode": v["verdict"]},
                                         {"name": "why", "valueString": v["why"] or "-"},
                                         {"name": "critical", "valueBoolean": bool(v["critical"])}]}
        for v in results.get("requirements") or []], [
        {"name": "check", "part": [{"name": "id", "valueString": r["id"]},
                                   {"name": "status", "valueCode": r["status"]},
                                   {"name": "message", "valueString": r.get("message") or "-"}]}
        for r in (results.get("report") or {}).get("results") or []]]
    flat = [*params[0], *params[1], *params[2]]
    if results.get("report"):
        data = base64.b64encode(orjson.dumps(results["report"])).decode("ascii")
        flat.append({"name": "report", "valueAttachment": {"contentType": "application/json", "data": data,
                                                            "title": f"conformance-run-{run['id']}.json"}})
    return FhirResponse(200, dumps({"resourceType": "Parameters", "parameter": flat}, pretty=call.pretty))
