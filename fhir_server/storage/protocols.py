"""The Store protocol: the only door to data (architecture.md, core decision 4).

Backend-neutral: no SQL or MQL leaks above this line. Writes are *units*: a synchronous function
run by the backend inside one atomic transaction with a :class:`TxView` (serializable: nothing else
writes while it runs), so that conditional interactions and FHIR transactions are written once above
the backends (house style §4, after Medplum's ``withTransaction``). The audit trail has protocols of its
own (storage/audit.py), reached as ``Store.audit`` and ``TxView.audit``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from fhir_server.storage.audit import AuditLog, AuditTx

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StoredResource:
    """One version of one resource as stored. ``data`` is the JSON bytes (None for a delete)."""

    type: str
    id: str
    version: int
    last_updated: str  # FHIR instant, UTC, microseconds, e.g. 2026-11-21T23:59:59.123456Z
    deleted: bool
    data: bytes | None
    method: str = "PUT"  # the HTTP method that made this version (history Bundle.entry.request)
    # Current versions only: the ids of the patients whose compartment it is in, space-separated
    # ("" none), as computed when it was written; None when the backend does not know (then parse).
    patients: str | None = None


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """History at instance (type and id), type (type only) or system level (neither)."""

    type: str | None = None
    id: str | None = None
    since: str | None = None  # versions with last_updated >= since
    at_start: str | None = None  # versions current at some time in [at_start, at_end)
    at_end: str | None = None
    count: int = 50
    before_seq: int | None = None  # paging cursor: only entries older than this sequence number
    after_seq: int | None = None  # backwards paging cursor: the page of entries just newer than this


@dataclass(frozen=True, slots=True)
class HistoryPage:
    entries: list[StoredResource]
    total: int
    next_cursor: int | None
    seqs: list[int]
    previous_cursor: int | None = None  # set when newer entries exist before this page


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One message waiting in (or delivered from) the durable outbox."""

    id: int
    topic: str
    partition: str | None
    key: str
    payload: bytes
    created: str
    available_at: str
    attempts: int
    status: str  # pending | delivered | dead
    last_error: str | None
    delivered_at: str | None


class StoreError(Exception):
    """A write unit could not be applied; ``category`` follows fhir_server.errors."""

    def __init__(self, category: str, message: str) -> None:
        super().__init__(message)
        self.category = category
        self.message = message


class TxView(Protocol):
    """What a write unit may do. Runs synchronously inside the backend's transaction."""

    @property
    def timestamp(self) -> str:
        """The lastUpdated instant of this unit: unique and increasing across units."""
        ...

    def current(self, resource_type: str, resource_id: str) -> StoredResource | None:
        """The current version (a deleted one has ``deleted=True``), or None if never stored."""
        ...

    def version(self, resource_type: str, resource_id: str, version: int) -> StoredResource | None:
        """One stored version (a vread inside the unit), or None."""
        ...

    def search_ids(self, query: Any, limit: int) -> list[tuple[str, str]]:
        """(type, id) of current resources matching a search query, at most ``limit``."""
        ...

    def put(self, resource_type: str, resource_id: str, version: int, data: bytes, index: Any,
            method: str, patients: str) -> StoredResource:
        """Store ``version`` of a resource (1 for a create) with its search index rows and the ids of the
        patients whose compartment it is in (space-separated, "" none: search/compartments.py)."""
        ...

    def patients(self, resource_type: str, resource_id: str) -> str | None:
        """The stored compartment patients of a current resource ("" none); None if absent or deleted."""
        ...

    def delete(self, resource_type: str, resource_id: str, version: int, method: str) -> StoredResource:
        """Store a deletion as ``version``; the resource reads as gone afterwards."""
        ...

    def expunge(self, resource_type: str, resource_id: str) -> int:
        """Physically remove a resource: its current row, every version and its index rows (AC-22). Returns
        the number of versions removed (0: not stored). Cannot be undone once the unit commits."""
        ...

    def enqueue(self, topic: str, partition: str | None, key: str, payload: bytes) -> None:
        """Queue an outbox message; it commits with the unit or not at all (idempotent per topic+key)."""
        ...

    @property
    def audit(self) -> AuditTx:
        """The audit trail of this unit (storage/audit.py): what it appends commits with the unit (AC-14)."""
        ...

    def settle_outbox(self, ids: list[int], status: str, error: str | None, retry_at: str | None) -> None:
        """Record delivery outcomes: ``delivered``, ``retry`` (at ``retry_at``) or ``dead``."""
        ...

    def put_job(self, job_id: str, kind: str, status: str, data: bytes) -> None:
        """Create or replace a background job's record (JSON ``data``; ``status`` is indexed)."""
        ...

    def delete_job(self, job_id: str) -> None:
        """Forget a job."""
        ...

    def job(self, job_id: str) -> bytes | None:
        """A job's ``data`` as this unit sees it (its own ``put_job`` included), or None. Units are
        serialized on every backend, so a read here and a ``put_job`` in the same unit are one atomic
        step across processes (subscription event numbers, subscriptions/registry.py)."""
        ...

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` after the unit committed (not if it rolled back), before its caller resumes."""
        ...


class Store(Protocol):
    """An async store of FHIR resources, their versions and search indexes."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def transaction(self, unit: Callable[[TxView], T], *, relaxed: bool = False) -> T:
        """Run ``unit`` atomically: everything it wrote commits together, or nothing does if it raises.

        ``relaxed``: the unit only records (read audit events); the backend may acknowledge it once it
        survives a process crash, before it is on disk (no fsync of its own)."""
        ...

    @property
    def audit(self) -> AuditLog:
        """The tamper-evident audit trail (storage/audit.py); units append to it through ``TxView.audit``."""
        ...

    async def read(self, resource_type: str, resource_id: str) -> StoredResource | None: ...

    async def vread(self, resource_type: str, resource_id: str, version: int) -> StoredResource | None: ...

    async def history(self, query: HistoryQuery) -> HistoryPage: ...

    async def search(self, query: Any) -> Any:
        """Run a search query (fhir_server.search.SearchQuery); returns a SearchResult."""
        ...

    async def include(self, specs: Any, sources: Any, limit: int) -> Any:
        """One round of ``_include`` / ``_revinclude``: at most ``limit`` current resources the
        IncludeSpecs reach from the SearchMatches ``sources``, each once (none of the sources), as
        SearchMatches of mode ``include``. ``search`` never follows includes itself: the access session
        does, round by round, judging each."""
        ...

    async def search_ids(self, query: Any, limit: int) -> list[tuple[str, str]]:
        """(type, id) of current resources matching a search query, at most ``limit`` (no paging)."""
        ...

    async def outbox_due(self, topic: str, now: str, limit: int) -> list[OutboxItem]:
        """Pending messages of a topic whose time has come, oldest first."""
        ...

    async def outbox_partition(self, topic: str, partition: str, limit: int,
                               before_id: int | None = None) -> list[OutboxItem]:
        """Messages of one partition (e.g. a patient's notifications), newest first."""
        ...

    async def outbox_by_status(self, topic: str, status: str, limit: int,
                               before_id: int | None = None) -> list[OutboxItem]:
        """Messages of a topic in one status (``dead``: given up, e.g. rejected by the NEHP), newest first."""
        ...

    async def outbox_counts(self, topics: list[str]) -> list[tuple[str, str, int]]:
        """(topic, status, messages) for each of these topics and each status it has messages in."""
        ...

    async def get_job(self, job_id: str) -> tuple[str, str, str, bytes] | None:
        """(kind, status, updated, data) of a background job, or None."""
        ...

    async def list_jobs(self, kind: str, status: str) -> list[tuple[str, bytes]]:
        """(id, data) of the jobs of a kind in a status."""
        ...
