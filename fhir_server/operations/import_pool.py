"""Validation workers for ``$import``: the lines of a chunk are parsed and validated in other processes
while the server process writes the previous chunks (the writer and the event loop keep one core busy;
validation is the larger share of the work and needs the others).

The workers are **forked** from the server when a job starts, so they hold the very validators of the
server (``Services``: structure, profiles — the KZ IG, the core profiles and every StructureDefinition
stored on the server until then —, terminology, signatures) with their compiled caches warm; nothing is
rebuilt or configured twice, and the validation is the one writes run (``import_lines.prepare_lines``).
A StructureDefinition imported by the job itself is used from the next job on. Where ``fork`` is not
available, or with ``import_validation_workers = -1``, a thread of the server process validates instead.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from fhir_server.errors import FhirError
from fhir_server.interactions.base import Services
from fhir_server.operations.import_lines import Prepared, Refused, prepare_lines
from fhir_server.validation.issues import Issue

_SERVICES: Services | None = None  # the server's, inherited by forked workers


@dataclass(frozen=True, slots=True)
class _Failure:
    """A refused line in a picklable form (FhirError's constructor is not its ``args``)."""

    number: int
    category: str
    message: str
    issues: tuple[Issue, ...]
    headers: tuple[tuple[str, str], ...]


def _start_worker() -> None:
    """In each worker process as it starts: the profile walk remembers the subtrees it has judged (the same
    coding, amount or period recurs across a bulk file; validation/profile/walker.py ``Walk.memo``). A worker
    lives for one job, and sees the profiles and terminology of its fork, so the memo cannot go stale."""
    if _SERVICES is not None and _SERVICES.profiles is not None:
        _SERVICES.profiles.memo = {}


def _in_worker(batch: list[tuple[int, bytes | None]], expected: str | None, source: str | None,
               max_line: int) -> list[Prepared | _Failure]:
    assert _SERVICES is not None
    out: list[Prepared | _Failure] = []
    for item in prepare_lines(_SERVICES, batch, expected, source, max_line):
        if isinstance(item, Refused):
            e = item.error
            out.append(_Failure(item.number, e.category, e.message, tuple(e.issues), tuple(e.headers.items())))
        else:
            out.append(item)
    return out


def _revived(items: list[Prepared | _Failure]) -> list[Prepared | Refused]:
    return [Refused(i.number, FhirError(i.category, i.message, issues=i.issues, headers=dict(i.headers)))
            if isinstance(i, _Failure) else i for i in items]


def worker_count(setting: int) -> int:
    """Processes for a setting: 0 = one per core (at most 4); -1 = none (a thread validates)."""
    if setting < 0 or "fork" not in multiprocessing.get_all_start_methods():
        return 0
    return setting if setting > 0 else min(4, os.cpu_count() or 1)


class Preparer:
    """Submits chunks to the workers; ``depth`` chunks at most are in flight (reading stays ahead of
    writing by that much, and memory stays bounded)."""

    def __init__(self, services: Services, workers: int) -> None:
        self.services = services
        self.max_line = services.settings.import_max_line_bytes
        self.processes = workers
        self.depth = 2 * max(1, workers)
        self._executor: Executor | None = None

    def _pool(self) -> Executor:
        if self._executor is None:
            if self.processes > 0:
                global _SERVICES
                _SERVICES = self.services
                self._executor = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("fork"),
                                                     initializer=_start_worker)
            else:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="kzfhir-import-validate")
        return self._executor

    async def submit(self, batch: list[tuple[int, bytes | None]], expected: str | None,
                     source: str | None) -> list[Prepared | Refused]:
        loop = asyncio.get_running_loop()
        if self.processes > 0:
            items = await loop.run_in_executor(self._pool(), _in_worker, batch, expected, source, self.max_line)
            return _revived(items)
        return await loop.run_in_executor(self._pool(), prepare_lines, self.services, batch, expected, source,
                                          self.max_line)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def preparer_for(services: Services) -> Any:
    return Preparer(services, worker_count(services.settings.import_validation_workers))
