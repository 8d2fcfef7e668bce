"""FHIR Bulk Data ``$export`` (Bulk Data Access IG v2, R4, "Flat FHIR" NDJSON): the kick-off at system
(``[base]/$export``), all-patients (``[base]/Patient/$export``) and group (``[base]/Group/[id]/$export``)
level, then the status, file and cancel requests that ``api/routes/bulk.py`` serves.

A kick-off answers 202 with ``Content-Location: [base]/$export-status/[job id]``; the export then runs
as an asyncio task of this process (``export_runner.py``) while its durable record sits in the
store's job table (``export_jobs.py``). Only the client that started a job may poll, download or
cancel it. Settings: ``KZFHIR_EXPORT_MAX_LINES_PER_FILE`` (100,000), ``KZFHIR_EXPORT_MAX_RUNNING_JOBS``
(4 per process; more kick-offs get 429) and the de-identification secret (``export_deid.py``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from pydantic_settings import BaseSettings, SettingsConfigDict

from fhir_server.errors import FhirError
from fhir_server.interactions.base import FhirResponse, Services
from fhir_server.interactions.request import FhirRequest
from fhir_server.jsonio import dumps
from fhir_server.operations.export_deid import configured_secret
from fhir_server.operations.export_files import file_path, remove_files
from fhir_server.operations.export_jobs import (
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    KIND,
    ExportJob,
    create_job,
    forget_job,
    jobs_root,
    keeps_leases,
    lease_job,
    load_job,
    owner_of,
    save_job,
)
from fhir_server.operations.export_manifest import manifest, outcome
from fhir_server.operations.export_params import GROUP, PATIENT, SYSTEM, ExportRequest, Prefer, parse_request
from fhir_server.operations.export_runner import Progress, audit_target, run_export
from fhir_server.operations.registry import OperationCall, operation
from fhir_server.security.audit.balp import AuditTarget
from fhir_server.security.fhirtime import utc_now
from fhir_server.security.policy import Action, Decision, Verdict, break_glass_active
from fhir_server.security.refs import ref_id, ref_type, relative_ref
from fhir_server.security.session import AccessSession
from fhir_server.storage.protocols import Store

log = logging.getLogger(__name__)


class ExportSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KZFHIR_EXPORT_", extra="ignore")

    max_lines_per_file: int = 100_000
    max_running_jobs: int = 4
    #: a running job's lease (several server processes on PostgreSQL): renewed every third of it; a job
    #: whose process stopped renewing is taken over by the next status request after it runs out
    lease_seconds: float = 60.0


@dataclass(slots=True)
class _Running:
    task: asyncio.Task[None]
    progress: Progress
    records: Any  # the store the job's records are in (its server's)
    lease: asyncio.Task[None] | None = None  # renews the job's lease while it runs (several processes)


# Jobs running in this process. The loop keeps only weak references to tasks: this dict keeps them alive.
_RUNNING: dict[str, _Running] = {}
_OWNER_ONLY = "only the client that started a bulk export may poll, download or cancel it"


@operation("export", levels=("system",))
@operation("export", levels=("type",), types=("Patient",))
@operation("export", levels=("instance",), types=("Group",))
async def export_operation(call: OperationCall) -> FhirResponse:
    """The kick-off. ``call.extra["prefer"]`` is the request's Prefer header (api/routes/bulk.py)."""
    level = SYSTEM if call.resource_type is None else GROUP if call.resource_type == "Group" else PATIENT
    spec = parse_request(level, call.resource_id, call.params(), Prefer.parse(call.extra.get("prefer")),
                         call.services.definitions.is_resource_type)
    request_url = _request_url(call)
    access = call.access
    await _gate(access, spec, AuditTarget("operation", call.resource_type, call.resource_id, query=request_url))
    secret = configured_secret(call.services.settings) if spec.deidentify else None
    patients = await _patients(access, spec)
    settings = ExportSettings()
    if sum(1 for r in _RUNNING.values() if not r.task.done()) >= settings.max_running_jobs:
        raise FhirError("too_many_requests", "too many bulk exports are running; try again later",
                        headers={"Retry-After": "60"})
    job = ExportJob(uuid.uuid4().hex, owner_of(call.ctx), request_url, spec, patients=patients)
    await create_job(access.records, job)
    await lease_job(access.records, job.id, settings.lease_seconds)  # before the client can poll another node about it
    _launch(call.services, call.req.fork().access, job, secret, settings.max_lines_per_file)
    status_url = f"{call.base_url.rstrip('/')}/$export-status/{job.id}"
    return FhirResponse(202, dumps(outcome("information", "informational", f"export started; poll {status_url}")),
                        {"Content-Location": status_url})


def _request_url(call: OperationCall) -> str:
    where = "".join(f"{p}/" for p in (call.resource_type, call.resource_id) if p)
    query = f"?{urlencode(call.query)}" if call.query else ""
    return f"{call.base_url.rstrip('/')}/{where}$export{query}"


async def _gate(access: AccessSession, spec: ExportRequest, target: AuditTarget) -> None:
    """Type-level gate for ``Action.EXPORT`` (SMART ``r`` and ``s`` on each type exported); a refusal
    is audited and answered 403 before any job exists."""
    if not access.enabled:
        return
    if break_glass_active(access.ctx, utc_now()):
        # AC-02: emergency access is for treating the patient at hand, never bulk disclosure.
        await access.deny(target, Verdict.reject("break-glass access does not cover $export (AC-02)"))
    default: str | None = None if spec.level == SYSTEM else "Patient"
    gated = [*(spec.types or (default,)), *(("Group",) if spec.level == GROUP else ())]
    for resource_type in gated:
        await access.gate(Action.EXPORT, resource_type, target)


async def _patients(access: AccessSession, spec: ExportRequest) -> tuple[str, ...] | None:
    """The explicit patient list: ``patient`` parameters, or the members of a Group the caller may
    see (intersected); a hidden Group is unknown (404)."""
    if spec.level != GROUP:
        return spec.patients
    assert spec.group_id is not None
    # the Group is its members' data (R4 patient compartment): a Group the caller may not see is unknown
    stored = await access.read("Group", spec.group_id, interaction="operation", record=False)
    members = group_members(orjson.loads(stored.data or b"{}"))
    if spec.patients is not None:
        wanted = set(spec.patients)
        members = tuple(m for m in members if m in wanted)
    return members


def group_members(group: dict[str, Any]) -> tuple[str, ...]:
    """Ids of the Patients in ``Group.member.entity`` that are not flagged ``inactive``."""
    ids: list[str] = []
    for member in group.get("member", []) or []:
        if not isinstance(member, dict) or member.get("inactive") is True:
            continue
        ref = relative_ref((member.get("entity") or {}).get("reference"))
        if ref_type(ref) == "Patient" and ref_id(ref):
            ids.append(str(ref_id(ref)))
    return tuple(dict.fromkeys(ids))


def job_directory(services: Services, job_id: str) -> Path:
    return jobs_root(services.settings.database, services.settings.export_dir) / job_id


def _launch(services: Services, access: AccessSession, job: ExportJob, secret: bytes | None, max_lines: int) -> None:
    """Start the job's task with a session of its own for the caller (the request's session is flushed
    when the kick-off is answered; the export's records commit when it completes)."""
    progress = Progress()
    work = run_export(access, job, progress, directory=job_directory(services, job.id), max_lines=max_lines,
                      secret=secret)
    loop = asyncio.get_running_loop()
    task = loop.create_task(work, name=f"kzfhir-export-{job.id}")
    lease = loop.create_task(_keep_lease(access.records, job.id, task)) if keeps_leases(access.records) else None
    _RUNNING[job.id] = _Running(task, progress, access.records, lease)
    task.add_done_callback(partial(_finished, job.id))


async def _keep_lease(store: Store, job_id: str, task: asyncio.Task[None]) -> None:
    """Renew the job's lease while it runs here; when another process has taken it over (this one
    could not renew in time), stop: one process writes a job's files."""
    seconds = ExportSettings().lease_seconds
    while not task.done():
        await asyncio.sleep(seconds / 3)
        try:
            taken = await lease_job(store, job_id, seconds)
        except Exception:  # the database is away: the next renewal may still be in time
            log.warning("bulk export %s: lease not renewed", job_id, exc_info=True)
            continue
        if taken is False and not task.done():
            log.warning("bulk export %s was taken over by another server process; stopping here", job_id)
            task.cancel()


def _finished(job_id: str, task: asyncio.Task[None]) -> None:
    running = _RUNNING.pop(job_id, None)
    if running is not None and running.lease is not None:
        running.lease.cancel()
    if not task.cancelled() and task.exception() is not None:
        # run_export records its own failures; this is a failure to record one (the store went away).
        # The status request then reports the job as stopped (see export_status).
        log.error("bulk export %s stopped without recording its outcome: %r", job_id, task.exception())


async def _owned(req: FhirRequest, job_id: str, what: str) -> ExportJob:
    """The job, for the client that started it only (a rule about the caller: 403, audited)."""
    job = await load_job(req.access.records, job_id)
    if job is None:
        raise FhirError("not_found", f"there is no bulk export job {job_id[:64]!r}", code="not-found")
    if job.owner != owner_of(req.ctx):
        if req.access.enabled:
            await req.access.deny(AuditTarget("operation", query=what), Verdict.reject(_OWNER_ONLY))
        raise FhirError("forbidden", _OWNER_ONLY, code="forbidden")
    return job


async def _fail(store: Store, settings: Any, job: ExportJob, reason: str) -> ExportJob:
    job.status, job.failure = FAILED, reason
    remove_files(jobs_root(settings.database, settings.export_dir) / job.id)
    await save_job(store, job)
    return job


async def export_status(req: FhirRequest, job_id: str) -> FhirResponse:
    """202 + ``X-Progress`` while running, 200 + manifest when complete, 500 + OperationOutcome when failed."""
    job = await _owned(req, job_id, f"$export-status/{job_id}")
    if job.status == IN_PROGRESS:
        running = _RUNNING.get(job_id)
        if running is not None:
            return FhirResponse(202, None, {"X-Progress": running.progress.header(), "Retry-After": "2"})
        # Not running in this process. The job read above may predate its completion (the task records
        # the outcome, then leaves _RUNNING): read it again, now that it is known not to be running.
        job = await load_job(req.access.records, job_id) or job
        if job.status == IN_PROGRESS:
            taken = await lease_job(req.access.records, job.id, ExportSettings().lease_seconds)
            if taken is None:  # still, on a store of one process: it was interrupted by a restart
                job = await _fail(req.access.records, req.settings, job,
                                  "the export stopped before it completed; start a new export")
            elif taken:  # its process stopped renewing the lease (it died): this one runs it, from the start
                _resume(req, job)
                return FhirResponse(202, None, {"X-Progress": "resumed", "Retry-After": "2"})
            else:  # another server process runs it
                return FhirResponse(202, None, {"X-Progress": "in progress", "Retry-After": "2"})
    if job.status == FAILED:
        return FhirResponse(500, dumps(outcome("error", "exception", job.failure or "the export failed")))
    body = manifest(job, req.base_url, requires_token=req.access.enabled)
    return FhirResponse(200, dumps(body), {"Content-Type": "application/json"})


def _resume(req: FhirRequest, job: ExportJob) -> None:
    """Run again, here, a job whose process died: the export is cut at its ``transactionTime``, so a
    fresh run writes the same files (the partial ones are removed first)."""
    remove_files(job_directory(req.services, job.id))
    job.output, job.errors = [], []
    secret = configured_secret(req.services.settings) if job.spec.deidentify else None
    _launch(req.services, req.fork().access, job, secret, ExportSettings().max_lines_per_file)


async def cancel_export(req: FhirRequest, job_id: str) -> FhirResponse:
    """IG v2 "Delete a Bulk Data Request": stop the job, forget it and remove its files (202)."""
    job = await _owned(req, job_id, f"DELETE $export-status/{job_id}")
    running = _RUNNING.pop(job.id, None)
    if running is not None:
        running.task.cancel()
        await asyncio.gather(running.task, return_exceptions=True)
    await forget_job(req.access.records, job.id)
    remove_files(job_directory(req.services, job.id))
    return FhirResponse(202, dumps(outcome("information", "informational", f"bulk export {job.id} deleted")))


async def export_file(req: FhirRequest, job_id: str, name: str) -> Path:
    """The path of one file of a completed job's manifest; each download is audited (AC-14)."""
    job = await _owned(req, job_id, f"$export-file/{job_id}/{name}")
    path = file_path(job_directory(req.services, job.id), name) if job.status == COMPLETED and job.file(name) else None
    if path is None:
        raise FhirError("not_found", f"bulk export {job.id} has no file {name[:80]!r}", code="not-found")
    target = AuditTarget("operation", query=f"{audit_target(job).query} -> {name}")
    req.access.record(target, Verdict(Decision.AUTHORIZED, "download by the client that started the export"), set())
    return path


async def recover_jobs(store: Store, settings: Any) -> int:
    """At start-up: jobs left ``in-progress`` by a stopped server are marked failed with a reason
    (their partial files removed), so a client polling them learns it instead of waiting forever. On
    a store that leases jobs (several processes) a job in progress may be another process's: it is
    left alone, and resumed by a status request once its lease has run out (``export_status``)."""
    if keeps_leases(store):  # several processes: a job is resumed by the next poll once its lease runs out
        return 0
    count = 0
    for job_id, data in await store.list_jobs(KIND, IN_PROGRESS):
        if job_id in _RUNNING:
            continue
        await _fail(store, settings, ExportJob.from_bytes(job_id, data),
                    "the server restarted while this export was running; start a new export")
        count += 1
    return count


async def stop_exports(store: Store, settings: Any) -> int:
    """At shutdown (before the store closes): cancel this store's running jobs and mark them failed."""
    stopping = [(job_id, r) for job_id, r in list(_RUNNING.items()) if r.records is store]
    for job_id, running in stopping:
        _RUNNING.pop(job_id, None)
        running.task.cancel()
        await asyncio.gather(running.task, return_exceptions=True)
        job = await load_job(store, job_id)
        if job is not None and job.status == IN_PROGRESS:
            await _fail(store, settings, job, "the server shut down while this export was running; start a new export")
    return len(stopping)
