"""FHIR Bulk Data ``$import`` (the Bulk Data Import proposal, smart-on-fhir/bulk-import, with HAPI FHIR's
Parameters form): the kick-off at ``[base]/$import``, then the status, error-file and cancel requests that
``api/routes/bulk_import.py`` serves.

A kick-off answers 202 with ``Content-Location: [base]/$import-status/[job id]``; the import then runs as an
asyncio task of this process (``import_runner.py``) while its durable record sits in the store's job table
(``import_jobs.py``). Only the client that started a job reaches it: anyone else gets 404, as for a job that
does not exist (the refusal is audited). docs/bulk-import.md describes the whole flow.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import uuid
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from fhir_server.errors import FhirError
from fhir_server.interactions.base import FhirResponse, Services
from fhir_server.interactions.request import FhirRequest
from fhir_server.jsonio import dumps
from fhir_server.operations.export_manifest import outcome
from fhir_server.operations.import_jobs import (
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    KIND,
    ImportJob,
    InputResult,
    create_job,
    forget_job,
    imports_root,
    load_job,
    owner_of,
    save_job,
)
from fhir_server.operations.import_manifest import manifest
from fhir_server.operations.import_pool import Preparer, preparer_for
from fhir_server.operations.import_request import POSTED, ImportInput, ImportRequest, parse_request
from fhir_server.operations.import_runner import Progress, run_import
from fhir_server.operations.import_sources import SourceFile, posted_file, resolve_input
from fhir_server.operations.registry import OperationCall, operation
from fhir_server.security.audit.balp import AuditTarget
from fhir_server.security.policy import Action
from fhir_server.storage.protocols import Store

log = logging.getLogger(__name__)
ERROR_NAME_PREFIX = "errors."


@dataclass(slots=True)
class _Running:
    task: asyncio.Task[None]
    progress: Progress
    preparer: Preparer
    records: Any  # the store the job's records are in (its server's)


_RUNNING: dict[str, _Running] = {}


def job_directory(services: Services, job_id: str) -> Path:
    return imports_root(services.settings.database) / job_id


@operation("import", levels=("system",))
async def import_operation(call: OperationCall) -> FhirResponse:
    """The kick-off. ``call.extra``: ``prefer`` (the Prefer header) and, for a posted NDJSON body, ``posted``
    (the file the route streamed it to)."""
    prefer = str(call.extra.get("prefer") or "")
    posted: Path | None = call.extra.get("posted")
    try:
        if "respond-async" not in [p.strip() for p in prefer.split(",")]:
            raise FhirError("invalid", "$import is asynchronous: send Prefer: respond-async", code="required",
                            expression="Prefer")
        if call.method != "POST":
            raise FhirError("method_not_allowed", "$import is POST only", code="not-supported")
        services = call.services
        settings = services.settings
        if posted is not None:
            request = ImportRequest((ImportInput(None, POSTED),), _posted_source(call.query))
        else:
            request = parse_request(call.body, services.definitions.is_resource_type)
        sources = [[] if item.url == POSTED else
                   resolve_input(settings.import_root, item, i, settings.import_max_file_bytes)
                   for i, item in enumerate(request.inputs)]
        for resource_type in sorted({i.type for i in request.inputs if i.type is not None}):
            for action in (Action.CREATE, Action.UPDATE):  # a line is a create or an update of its type
                await call.access.gate(action, resource_type, AuditTarget("operation", resource_type, query="$import"))
        if sum(1 for r in _RUNNING.values() if not r.task.done()) >= settings.import_max_running_jobs:
            raise FhirError("too_many_requests", "too many bulk imports are running; try again later",
                            headers={"Retry-After": "60"})
        job = ImportJob(uuid.uuid4().hex, owner_of(call.ctx), f"{call.base_url.rstrip('/')}/$import", request,
                        results=[InputResult(i.url) for i in request.inputs])
        directory = job_directory(services, job.id)
        directory.mkdir(parents=True, mode=0o700, exist_ok=True)
        if posted is not None:
            target = posted_file(directory, 0)
            shutil.move(str(posted), target.path)
            posted = None
            sources[0] = [target]
        await create_job(call.access.records, job)
    finally:
        if posted is not None:
            posted.unlink(missing_ok=True)
    _launch(call.req, job, sources, directory)
    status_url = f"{call.base_url.rstrip('/')}/$import-status/{job.id}"
    return FhirResponse(202, dumps(outcome("information", "informational", f"import started; poll {status_url}")),
                        {"Content-Location": status_url})


def _posted_source(query: list[tuple[str, str]]) -> str | None:
    values = [v for k, v in query if k == "inputSource"]
    return values[0][:2000] if values else None


def _launch(req: FhirRequest, job: ImportJob, sources: list[list[SourceFile]], directory: Path) -> None:
    """The job's task writes with sessions forked from the kick-off's caller (one per write unit)."""
    progress = Progress()
    preparer = preparer_for(req.services)
    work = run_import(req, job, sources, progress, preparer, directory=directory)
    task = asyncio.get_running_loop().create_task(work, name=f"kzfhir-import-{job.id}")
    _RUNNING[job.id] = _Running(task, progress, preparer, req.access.records)
    task.add_done_callback(partial(_finished, job.id))


def _finished(job_id: str, task: asyncio.Task[None]) -> None:
    running = _RUNNING.pop(job_id, None)
    if running is not None:
        running.preparer.close()
    if not task.cancelled() and task.exception() is not None:
        log.error("bulk import %s stopped without recording its outcome: %r", job_id, task.exception())


async def _owned(req: FhirRequest, job_id: str, what: str) -> ImportJob:
    """The job, for the client that started it only. Anyone else is told it does not exist (404, like an
    unknown id: a job id reveals nothing to other clients); the attempt is audited."""
    job = await load_job(req.access.records, job_id)
    if job is not None and job.owner != owner_of(req.ctx):
        req.access.refused(AuditTarget("operation", query=what), "the import job belongs to another client")
        job = None
    if job is None:
        raise FhirError("not_found", f"there is no bulk import job {job_id[:64]!r}", code="not-found")
    return job


async def _fail(store: Store, settings: Any, job: ImportJob, reason: str) -> ImportJob:
    job.status = FAILED
    job.failure = (f"{reason}; {job.imported} resources had been imported (they stay); the import is not "
                   "resumed: run it again (lines with an id update the same resources)")
    await save_job(store, job)
    return job


async def import_status(req: FhirRequest, job_id: str) -> FhirResponse:
    """202 + ``X-Progress`` while running, 200 + manifest when complete, 500 + OperationOutcome when failed."""
    job = await _owned(req, job_id, f"$import-status/{job_id}")
    if job.status == IN_PROGRESS:
        running = _RUNNING.get(job_id)
        if running is not None:
            return FhirResponse(202, None, {"X-Progress": running.progress.header(), "Retry-After": "2"})
        job = await load_job(req.access.records, job_id) or job
        if job.status == IN_PROGRESS:  # no task of this process runs it: it was interrupted
            job = await _fail(req.access.records, req.settings, job, "the import stopped before it completed")
    if job.status == FAILED:
        return FhirResponse(500, dumps(outcome("error", "exception", job.failure or "the import failed")))
    body = manifest(job, req.base_url, requires_token=req.access.enabled)
    return FhirResponse(200, dumps(body), {"Content-Type": "application/json"})


async def cancel_import(req: FhirRequest, job_id: str) -> FhirResponse:
    """The proposal's "Bulk Data Import Delete Request": stop the job, forget it and remove its files (202).
    Units already committed stay: an import is not rolled back (docs/bulk-import.md)."""
    job = await _owned(req, job_id, f"DELETE $import-status/{job_id}")
    running = _RUNNING.pop(job.id, None)
    if running is not None:
        running.task.cancel()
        await asyncio.gather(running.task, return_exceptions=True)
        running.preparer.close()
    await forget_job(req.access.records, job.id)
    shutil.rmtree(job_directory(req.services, job.id), ignore_errors=True)
    return FhirResponse(202, dumps(outcome("information", "informational",
                                           f"bulk import {job.id} cancelled; {job.imported} resources had been "
                                           "imported before")))


async def import_file(req: FhirRequest, job_id: str, name: str) -> Path:
    """An error file of the job's manifest (only names the job lists; no path tricks)."""
    job = await _owned(req, job_id, f"$import-file/{job_id}/{name}")
    path = job_directory(req.services, job.id) / name
    if job.status not in (COMPLETED, FAILED) or name not in job.error_files() or not path.is_file():
        raise FhirError("not_found", f"bulk import {job.id} has no file {name[:80]!r}", code="not-found")
    return path


async def recover_imports(store: Store, settings: Any) -> int:
    """At start-up: jobs left ``in-progress`` by a stopped server are marked failed with the count of what
    was committed (the restart decision: docs/bulk-import.md), so a polling client learns it."""
    count = 0
    for job_id, data in await store.list_jobs(KIND, IN_PROGRESS):
        if job_id in _RUNNING:
            continue
        await _fail(store, settings, ImportJob.from_bytes(job_id, data), "the server restarted while this import ran")
        count += 1
    return count


async def stop_imports(store: Store, settings: Any) -> int:
    """At shutdown (before the store closes): cancel this store's running jobs and mark them failed."""
    stopping = [(job_id, r) for job_id, r in list(_RUNNING.items()) if r.records is store]
    for job_id, running in stopping:
        _RUNNING.pop(job_id, None)
        running.task.cancel()
        await asyncio.gather(running.task, return_exceptions=True)
        running.preparer.close()
        job = await load_job(store, job_id)
        if job is not None and job.status == IN_PROGRESS:
            await _fail(store, settings, job, "the server shut down while this import ran")
    return len(stopping)
