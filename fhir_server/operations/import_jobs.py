"""The durable record of a bulk import job: one JSON document in the store's job table (kind
``bulk-import``), like an export's (``export_jobs.py``, whose owner rule and folder layout it shares).

The document is saved when the job starts, after every few write units (so the counts a restart reports
are the committed ones) and when it ends; nothing about a job lives only in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from fhir_server.operations.export_jobs import COMPLETED, FAILED, IN_PROGRESS, JOB_ID, Owner, owner_of
from fhir_server.operations.import_request import ImportRequest
from fhir_server.storage.protocols import Store, TxView

KIND = "bulk-import"
__all__ = ["COMPLETED", "FAILED", "IN_PROGRESS", "KIND", "ImportJob", "InputResult", "owner_of"]


@dataclass(slots=True)
class InputResult:
    """What one input gave: resources imported, lines refused, and the error file that lists them."""

    url: str
    count: int = 0
    errors: int = 0
    error_file: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "count": self.count, "errors": self.errors, "errorFile": self.error_file}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> InputResult:
        return cls(doc["url"], doc.get("count", 0), doc.get("errors", 0), doc.get("errorFile"))


@dataclass(slots=True)
class ImportJob:
    id: str
    owner: Owner
    request_url: str
    request: ImportRequest
    status: str = IN_PROGRESS
    transaction_time: str = ""
    results: list[InputResult] = field(default_factory=list)
    by_type: dict[str, int] = field(default_factory=dict)
    failure: str | None = None

    def to_bytes(self) -> bytes:
        return orjson.dumps({
            "owner": list(self.owner), "request": self.request_url, "spec": self.request.to_json(),
            "status": self.status, "transactionTime": self.transaction_time,
            "results": [r.to_json() for r in self.results], "byType": self.by_type, "failure": self.failure,
        })

    @classmethod
    def from_bytes(cls, job_id: str, data: bytes) -> ImportJob:
        doc = orjson.loads(data)
        owner = doc["owner"]
        return cls(job_id, (owner[0], owner[1], owner[2]), doc["request"], ImportRequest.from_json(doc["spec"]),
                   doc["status"], doc.get("transactionTime", ""),
                   [InputResult.from_json(r) for r in doc.get("results", [])], dict(doc.get("byType", {})),
                   doc.get("failure"))

    def error_files(self) -> set[str]:
        return {r.error_file for r in self.results if r.error_file}

    @property
    def imported(self) -> int:
        return sum(r.count for r in self.results)


async def create_job(store: Store, job: ImportJob) -> ImportJob:
    def unit(view: TxView) -> None:
        job.transaction_time = view.timestamp
        view.put_job(job.id, KIND, job.status, job.to_bytes())

    await store.transaction(unit)
    return job


async def save_job(store: Store, job: ImportJob) -> None:
    data = job.to_bytes()
    await store.transaction(lambda view: view.put_job(job.id, KIND, job.status, data))


async def load_job(store: Store, job_id: str) -> ImportJob | None:
    if not JOB_ID.fullmatch(job_id):
        return None
    row = await store.get_job(job_id)
    if row is None or row[0] != KIND:
        return None
    return ImportJob.from_bytes(job_id, row[3])


async def forget_job(store: Store, job_id: str) -> None:
    await store.transaction(lambda view: view.delete_job(job_id))


def imports_root(database: Path | str) -> Path:
    """Posted NDJSON and error files live beside the database: ``<database folder>/imports/<job id>/``; for a
    PostgreSQL URL in ``data/imports`` under the working directory, as exports and the authorization server's
    files (a URL is not a path: read as one it made a folder named ``postgresql:`` holding the host)."""
    if isinstance(database, str) and database.startswith(("postgresql://", "postgres://")):
        return Path("data/imports").resolve()
    return Path(database).resolve().parent / "imports"
