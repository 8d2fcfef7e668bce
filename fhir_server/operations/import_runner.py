"""The background work of one ``$import`` job: read, prepare (parse + validate), write, report.

The pipeline per input file: a reader takes ``import_chunk_size`` lines at a time and hands them to the
validation workers (``import_pool.py``: processes, so validation runs on other cores than the writer), while
the previous chunks are written through the executor (``import_writer.py``), one store unit each. Up to
``2 x workers`` chunks are in flight, across file boundaries, so validating and writing overlap.

Each refused line — not JSON, not a resource of the input's type, invalid (the same validation as every
write), refused by the access policy, too long — becomes one OperationOutcome line of the input's error file,
its ``location`` the line (``Line[17]``) and its diagnostics prefixed with the file and line. The job
document is saved after every unit, so its counts are what has been committed.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from fhir_server.errors import FhirError
from fhir_server.interactions.plan import ACTIONS
from fhir_server.interactions.request import FhirRequest
from fhir_server.operations.import_jobs import COMPLETED, FAILED, ImportJob, InputResult, save_job
from fhir_server.operations.import_lines import Prepared, Refused
from fhir_server.operations.import_pool import Preparer
from fhir_server.operations.import_sources import SourceFile, lines, open_checked
from fhir_server.operations.import_writer import write_chunk
from fhir_server.security.audit.balp import AuditTarget

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Progress:
    """What the status endpoint reports in ``X-Progress`` (under 100 characters, as the proposal asks)."""

    read: int = 0
    imported: int = 0
    refused: int = 0
    current: str = "starting"

    def header(self) -> str:
        return f"{self.imported} imported, {self.refused} refused of {self.read} lines; {self.current}"[:99]


@dataclass(slots=True)
class _ErrorFile:
    """The OperationOutcome NDJSON of one input (opened on its first error; 0600)."""

    path: Path
    progress: Progress
    handle: BinaryIO | None = None
    count: int = 0

    def write(self, line: bytes) -> None:
        self.progress.refused += 1
        if self.handle is None:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            self.handle = os.fdopen(fd, "wb", buffering=1 << 16)
        self.handle.write(line + b"\n")
        self.count += 1

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def error_name(index: int) -> str:
    return f"errors.{index + 1}.ndjson"


def error_outcome(source: str, number: int | None, exc: FhirError) -> bytes:
    """One refused line as an OperationOutcome: the error's own issues, located at the line."""
    where = f"{source} line {number}: " if number is not None else f"{source}: "
    issues: list[dict[str, Any]] = []
    for issue in exc.issues:
        item = issue.to_fhir()
        item["diagnostics"] = where + item["diagnostics"]
        if number is not None:
            item["location"] = [f"Line[{number}]"]
        issues.append(item)
    return orjson.dumps({"resourceType": "OperationOutcome", "issue": issues})


@dataclass(slots=True)
class _Run:
    base: FhirRequest
    job: ImportJob
    progress: Progress
    preparer: Preparer
    root: Path | None
    chunk: int
    max_line: int
    budget: int  # resources the job may still import (import_max_resources)
    gates: dict[tuple[str, str], FhirError | None] = field(default_factory=dict)


@dataclass(slots=True)
class _Pending:
    """One chunk in the pipeline, written in reading order: its validation (``work``), and an outcome that
    follows its lines in the error file (``note``: where ``import_max_resources`` cut the input)."""

    source: SourceFile
    result: InputResult
    errors: _ErrorFile
    work: asyncio.Future[list[Prepared | Refused]] | None
    note: bytes | None = None


async def run_import(base: FhirRequest, job: ImportJob, sources: list[list[SourceFile]], progress: Progress,
                     preparer: Preparer, *, directory: Path) -> None:
    """Run the job to completion or failure (recorded in the job document). Cancellation is the caller's
    to record: this closes its files and lets ``CancelledError`` through."""
    settings = base.settings
    run = _Run(base, job, progress, preparer, settings.import_root, max(1, settings.import_chunk_size),
               settings.import_max_line_bytes, settings.import_max_resources)
    errors = [_ErrorFile(directory / error_name(index), progress) for index in range(len(sources))]
    try:
        await _pipeline(run, sources, errors)
        for index, error_file in enumerate(errors):
            error_file.close()
            result = job.results[index]
            result.errors = error_file.count
            result.error_file = error_name(index) if error_file.count else None
    except asyncio.CancelledError:
        for e in errors:
            e.close()
        raise
    except Exception as exc:  # the job fails visibly (status 500 + reason) instead of hanging
        log.exception("bulk import %s failed", job.id)
        for e in errors:
            e.close()
        job.status, job.failure = FAILED, f"the import failed: {type(exc).__name__}: {exc}"[:500]
        await save_job(base.access.records, job)
        return
    job.status = COMPLETED
    progress.current = "done"
    await save_job(base.access.records, job)


def _chunks(handle: BinaryIO, size: int, max_line: int) -> Iterator[list[tuple[int, bytes | None]]]:
    it = lines(handle, max_line)
    while batch := list(islice(it, size)):
        yield batch


async def _pipeline(run: _Run, sources: list[list[SourceFile]], errors: list[_ErrorFile]) -> None:
    """Write the chunks in reading order while up to ``depth`` of them are being validated. The pipeline
    runs across files and inputs: a job of many small files (one per resource type, as Bulk Data exports
    are) would otherwise let the writer wait for the first chunk of every file, and the workers for the
    last write of the one before."""
    pending: deque[_Pending] = deque()
    feed = _feed(run, sources, errors)
    exhausted = False
    try:
        while True:
            while not exhausted and len(pending) < run.preparer.depth:
                item = await anext(feed, None)
                if item is None:
                    exhausted = True
                    break
                pending.append(item)
            if not pending:
                return
            item = pending.popleft()
            if item.work is not None:
                run.progress.current = f"reading {item.source.name}"[:60]
                await _write(run, item.source, await item.work, item.result, item.errors)
            if item.note is not None:
                item.errors.write(item.note)
    finally:
        for item in pending:
            if item.work is not None:
                item.work.cancel()
        await feed.aclose()


async def _feed(run: _Run, sources: list[list[SourceFile]], errors: list[_ErrorFile]
                ) -> AsyncGenerator[_Pending, None]:
    """The chunks of every file of every input, in order, each handed to the validation workers as it is
    read. A file met once the job has read ``import_max_resources`` lines is reported, not read."""
    for index, files in enumerate(sources):
        result, error_file = run.job.results[index], errors[index]
        expected = run.job.request.inputs[index].type
        for source in files:
            if run.budget <= 0:
                limit = run.base.settings.import_max_resources
                exc = FhirError("too_large", f"the job reached import_max_resources ({limit} resources); "
                                "this file was not imported", code="too-costly")
                yield _Pending(source, result, error_file, None, error_outcome(source.name, None, exc))
                continue
            handle = await asyncio.to_thread(open_checked, source, run.root)
            try:
                reader = _chunks(handle, run.chunk, run.max_line)
                while (batch := await asyncio.to_thread(next, reader, None)) is not None:
                    cut: bytes | None = None
                    if len(batch) > run.budget:  # import_max_resources: what is beyond is reported, not imported
                        stop = batch[run.budget][0]
                        batch = batch[:run.budget]
                        exc = FhirError("too_large", f"the job reached import_max_resources "
                                        f"({run.base.settings.import_max_resources} resources); lines from {stop} "
                                        "on were not imported", code="too-costly")
                        cut = error_outcome(source.name, stop, exc)  # reported after the lines before it
                    run.budget -= len(batch)
                    run.progress.read += len(batch)
                    work = asyncio.ensure_future(run.preparer.submit(batch, expected, run.job.request.input_source))
                    yield _Pending(source, result, error_file, work, cut)
                    if cut is not None:
                        break
            finally:
                handle.close()


async def _gate(run: _Run, line: Prepared) -> FhirError | None:
    """The type-level gate of the line's interaction, asked once per job and (action, type): a refusal is
    audited once, and every line it covers is reported with it."""
    key = (line.method, line.resource_type)
    if key not in run.gates:
        access = run.base.fork().access
        try:
            await access.gate(ACTIONS[line.method], line.resource_type,
                              AuditTarget("create" if line.method == "POST" else "update", line.resource_type,
                                          query="$import"))
            run.gates[key] = None
        except FhirError as exc:
            run.gates[key] = exc
    return run.gates[key]


async def _write(run: _Run, source: SourceFile, prepared: list[Prepared | Refused], result: InputResult,
                 errors: _ErrorFile) -> None:
    ready: list[Prepared] = []
    for item in prepared:
        if isinstance(item, Refused):
            errors.write(error_outcome(source.name, item.number, item.error))
            continue
        refusal = await _gate(run, item)
        if refusal is not None:
            errors.write(error_outcome(source.name, item.number, refusal))
            continue
        if item.resource_type == "Consent" and item.resource.get("sourceAttachment") is not None:
            from fhir_server.signatures.consent_evidence import consent_signers

            item.signers = await consent_signers(run.base.services, item.resource)  # AC-08, as plan.py does
        ready.append(item)
    for unit in _without_repeats(ready):
        written, refused = await write_chunk(run.base, unit)
        for line, exc in refused:
            errors.write(error_outcome(source.name, line.number, exc))
        for w in written:
            run.job.by_type[w.line.resource_type] = run.job.by_type.get(w.line.resource_type, 0) + 1
        result.count += len(written)
        run.progress.imported += len(written)
        await save_job(run.base.access.records, run.job)


def _without_repeats(lines: list[Prepared]) -> Iterator[list[Prepared]]:
    """Units in which no resource id repeats: a later line of the same id is a new version of the earlier
    one and must see it written first (one unit resolves every target before it writes)."""
    unit: list[Prepared] = []
    seen: set[tuple[str, str]] = set()
    for line in lines:
        key = (line.resource_type, line.resource_id or "")
        if line.resource_id is not None and key in seen:
            yield unit
            unit, seen = [], set()
        unit.append(line)
        if line.resource_id is not None:
            seen.add(key)
    if unit:
        yield unit
