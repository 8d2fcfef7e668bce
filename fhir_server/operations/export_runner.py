"""The background work of one bulk export job: read, judge, (de-identify,) write NDJSON, record.

Every resource passes the access policy with ``Action.EXPORT`` (docs/security.md: a Consent grants
it with the action ``disclose``; break-glass and legal exceptions never cover it). What the policy
withholds is skipped and only counted, in one OperationOutcome of the manifest's error file, so the
files never name what the caller may not see. The AuditEvents (BALP, one per patient exported) and
the patients' notifications (AC-18) commit in the same unit that marks the job completed: the
manifest becomes available exactly when the disclosure is on record (AC-14).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from fhir_server import jsonio
from fhir_server.operations.export_deid import deidentified_lines, job_secret
from fhir_server.operations.export_files import NdjsonFiles, remove_files
from fhir_server.operations.export_jobs import COMPLETED, FAILED, KIND, ExportJob, save_job
from fhir_server.operations.export_select import Page, pages
from fhir_server.security.audit.balp import AuditTarget
from fhir_server.security.deidentify import Deidentifier
from fhir_server.security.policy import Verdict
from fhir_server.security.session import AccessSession

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Progress:
    """What the status endpoint reports in ``X-Progress`` while the job runs."""

    written: int = 0
    withheld: int = 0
    current: str = "starting"

    def header(self) -> str:
        return f"{self.written} resources written; reading {self.current}"


@dataclass(slots=True)
class _Run:
    job: ExportJob
    access: AccessSession
    files: NdjsonFiles
    progress: Progress
    deidentifier: Deidentifier | None
    patients: dict[str, Verdict] = field(default_factory=dict)  # first grant per patient, for the audit


def audit_target(job: ExportJob) -> AuditTarget:
    resource_type = {"patient": "Patient", "group": "Group"}.get(job.spec.level)
    return AuditTarget("operation", resource_type, job.spec.group_id, query=job.request_url)


async def run_export(access: AccessSession, job: ExportJob, progress: Progress, *,
                     directory: Path, max_lines: int, secret: bytes | None) -> None:
    """Run the job to completion (or failure, recorded in the job document) with the access session of
    the client that started it. Cancellation is the caller's to record: this only closes the files and
    lets ``CancelledError`` through."""
    files = NdjsonFiles(directory, max_lines)
    deidentifier = Deidentifier(job_secret(secret, job.id)) if secret is not None else None
    run = _Run(job, access, files, progress, deidentifier)
    try:
        async for page in pages(access, job):
            await _emit(run, page)
    except asyncio.CancelledError:
        files.close()
        raise
    except Exception as exc:  # the job fails visibly (status 500 + reason) instead of hanging
        log.exception("bulk export %s failed", job.id)
        files.close()
        remove_files(directory)
        job.status, job.failure = FAILED, f"the export failed: {type(exc).__name__}: {exc}"[:500]
        await save_job(access.records, job)
        return
    await _complete(run)


async def _emit(run: _Run, page: Page) -> None:
    visible, withheld = page
    run.progress.withheld += withheld
    kept: list[tuple[str, bytes]] = []
    for match, judged in visible:
        if run.access.enabled:
            for patient_id in judged.patients:
                run.patients.setdefault(patient_id, judged.verdict)
        kept.append((match.resource_type, match.data))
    if kept:
        run.progress.current = kept[-1][0]
    if run.deidentifier is not None:
        # Pure CPU work: off the event loop so that other requests keep being served meanwhile.
        lines = await asyncio.to_thread(deidentified_lines, run.deidentifier, kept)
    else:
        lines = [(t, data if b"\n" not in data else jsonio.dumps(jsonio.loads(data))) for t, data in kept]
    for resource_type, line in lines:
        run.files.write(resource_type, line)
    run.progress.written += len(lines)


def _outcomes(run: _Run) -> list[bytes]:
    issues: list[dict[str, Any]] = []
    if run.access.enabled:
        # Always the same words, whether or not anything was withheld: like Bundle.total under the policy,
        # a count (or its absence) would tell the client that hidden data exists (docs/security.md).
        issues.append({"severity": "information", "code": "suppressed",
                       "diagnostics": "resources the access policy does not let this client see (no Consent of "
                                      "their patients permits disclosing them) are not in this export"})
    for name in run.job.spec.ignored:
        issues.append({"severity": "warning", "code": "not-supported",
                       "diagnostics": f"parameter {name!r} is not supported and was ignored (Prefer: handling=lenient)",
                       "expression": [name]})
    return [orjson.dumps({"resourceType": "OperationOutcome", "issue": [issue]}) for issue in issues]


def _record(run: _Run) -> None:
    """BALP: one AuditEvent per patient exported (grouped by the grant that allowed it)."""
    target = audit_target(run.job)
    by_verdict: dict[Verdict, set[str]] = {}
    for patient_id, verdict in run.patients.items():
        by_verdict.setdefault(verdict, set()).add(patient_id)
    for verdict, patient_ids in by_verdict.items():
        run.access.record(target, verdict, patient_ids)
    if not by_verdict:
        run.access.record(target, Verdict.proceed("bulk export of data that is not patients'"), set())


async def _complete(run: _Run) -> None:
    job = run.job
    job.output = run.files.close()
    job.errors = run.files.write_errors(_outcomes(run))
    job.status = COMPLETED
    _record(run)
    data = job.to_bytes()
    # the session's records (one AuditEvent per patient, their notices) commit with the completed job
    await run.access.transaction(lambda view: view.put_job(job.id, KIND, job.status, data))
