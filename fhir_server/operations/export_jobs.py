"""The durable record of a bulk export job: one JSON document in the store's job table.

The document holds everything the status and file endpoints need after a restart (owner, request,
transactionTime, the files and their counts, the failure reason), so nothing about a job lives only
in memory: a job that was running when the server stopped is found and marked failed at the next
start (``recover_jobs`` in ``export.py``), never silently lost.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from fhir_server.operations.export_params import ExportRequest
from fhir_server.security.context import RequestContext
from fhir_server.storage.protocols import Store, TxView

KIND = "bulk-export"
IN_PROGRESS, COMPLETED, FAILED = "in-progress", "completed", "failed"
JOB_ID = re.compile(r"^[0-9a-f]{32}$")

Owner = tuple[str | None, str | None, str | None]


def owner_of(ctx: RequestContext) -> Owner:
    """Who may poll, download and cancel: the same token subject, fhirUser and organisation (IG v2:
    the status and file requests carry the access token of the client that kicked off)."""
    return (ctx.subject, ctx.fhir_user, ctx.organization_bin)


@dataclass(frozen=True, slots=True)
class OutputFile:
    """One NDJSON file of the manifest (``output`` or ``error``)."""

    type: str
    name: str
    count: int

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "count": self.count}


@dataclass(slots=True)
class ExportJob:
    id: str
    owner: Owner
    request_url: str
    spec: ExportRequest
    status: str = IN_PROGRESS
    transaction_time: str = ""
    patients: tuple[str, ...] | None = None  # resolved at kick-off: explicit list or group members
    output: list[OutputFile] = field(default_factory=list)
    errors: list[OutputFile] = field(default_factory=list)
    failure: str | None = None

    def to_bytes(self) -> bytes:
        return orjson.dumps({
            "owner": list(self.owner), "request": self.request_url, "spec": self.spec.to_json(),
            "status": self.status, "transactionTime": self.transaction_time,
            "patients": None if self.patients is None else list(self.patients),
            "output": [f.to_json() for f in self.output], "error": [f.to_json() for f in self.errors],
            "failure": self.failure,
        })

    @classmethod
    def from_bytes(cls, job_id: str, data: bytes) -> ExportJob:
        doc = orjson.loads(data)
        owner = doc["owner"]
        patients = doc.get("patients")
        return cls(job_id, (owner[0], owner[1], owner[2]), doc["request"], ExportRequest.from_json(doc["spec"]),
                   doc["status"], doc.get("transactionTime", ""), None if patients is None else tuple(patients),
                   [OutputFile(**f) for f in doc.get("output", [])], [OutputFile(**f) for f in doc.get("error", [])],
                   doc.get("failure"))

    def file(self, name: str) -> OutputFile | None:
        return next((f for f in [*self.output, *self.errors] if f.name == name), None)


async def create_job(store: Store, job: ExportJob) -> ExportJob:
    """Store a new job; its ``transactionTime`` is the unit's own instant, on the same clock as every
    ``meta.lastUpdated``, so ``_lastUpdated le transactionTime`` cuts the export exactly there."""

    def unit(view: TxView) -> None:
        job.transaction_time = view.timestamp
        view.put_job(job.id, KIND, job.status, job.to_bytes())

    await store.transaction(unit)
    return job


async def save_job(store: Store, job: ExportJob) -> None:
    await store.transaction(lambda view: view.put_job(job.id, KIND, job.status, job.to_bytes()))


async def load_job(store: Store, job_id: str) -> ExportJob | None:
    if not JOB_ID.fullmatch(job_id):
        return None
    row = await store.get_job(job_id)
    if row is None or row[0] != KIND:
        return None
    return ExportJob.from_bytes(job_id, row[3])


async def forget_job(store: Store, job_id: str) -> None:
    await store.transaction(lambda view: view.delete_job(job_id))


#: this process, as a lease holder (host, pid and a random part: pids repeat across containers)
HOLDER = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def keeps_leases(store: Store) -> bool:
    """Does the store lease jobs to processes (PostgreSQL), or is every job its one process's (SQLite)?"""
    return getattr(store, "lease_job", None) is not None


async def lease_job(store: Store, job_id: str, seconds: float) -> bool | None:
    """Take or renew this process's lease of a running job (several server processes on one database,
    issue 11 §3: each job runs in one of them, and is taken over when that one dies). None: the store
    keeps no leases (SQLite: one process per database, every job is this process's)."""
    lease = getattr(store, "lease_job", None)
    if lease is None:
        return None
    taken: bool = await lease(job_id, HOLDER, seconds)
    return taken


def jobs_root(database: Path | str, export_dir: Path | None = None) -> Path:
    """The folder of export files, ``<root>/<job id>/``: ``export_dir`` (``KZFHIR_EXPORT_DIR``) when set
    — with several server nodes, storage they all mount, since a job's files are served by whichever
    node a status or file request reaches and a job is resumed by another node when its own dies —,
    else ``exports/`` beside a SQLite file, else (a PostgreSQL URL) ``data/exports`` under the working
    directory, where the authorization server's files go too."""
    if export_dir is not None:
        return export_dir.resolve()
    if isinstance(database, str) and database.startswith(("postgresql://", "postgres://")):
        return Path("data/exports").resolve()
    return Path(database).resolve().parent / "exports"
