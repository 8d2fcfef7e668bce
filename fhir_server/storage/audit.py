"""The audit seam: what a backend implements to keep the tamper-evident audit trail (AC-14, TM-13).

Backend-neutral, like ``storage/protocols.py``. Three protocols meet here:

* :class:`AuditTx` — what a write unit appends (``tx.audit``): AuditEvents, read blocks and read
  templates, committed atomically with the unit's other rows (architecture.md, core decision 5);
* :class:`AuditLog` — what the rest of the server reads (``store.audit``): events by patient or all,
  newest first with opaque paging positions, one read block's events, one event by id, the read-audit
  journal of the compiled read path, and verification;
* :class:`ReadStaging` — optional, for a backend that keeps no journal on the read path: the same
  journal lines staged in its database, durable against a process crash once awaited;
* :class:`ChainRules` — the rules of the trail, pure: how rows link, what an event row holds, how read
  blocks and templates are encoded and rendered, which notices a block queues. Backends store rows and
  run queries; they never decide these. The rules live in ``security/audit/`` (``rules.CHAIN_RULES``)
  and reach a backend by injection where the server is composed (``fhir_server/backends.py``): storage
  does not import security.

A backend implements :class:`AuditTx` and :class:`AuditLog` over its own tables (SQLite:
``storage/sqlite/audit/``) and is held to ``tests/contract/test_audit_contract.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

#: One chain row: (seq, event_id, recorded, patient, data, prev_hash, hash). ``event_id`` is the
#: AuditEvent's id, or ``r{seq}`` for a read block and ``t{seq}`` for a read template.
ChainRowTuple = tuple[int, str, str, str | None, bytes, str, str]


@dataclass(frozen=True, slots=True)
class ChainReport:
    """Result of a verification. ``first_broken_seq`` is None when the chain is intact."""

    ok: bool
    rows_checked: int
    head_seq: int
    head_hash: str
    first_broken_seq: int | None = None
    problem: str | None = None
    #: the rows before the checked ones that were archived (detached from the database, PostgreSQL's
    #: ``kzfhir db archive``): which seqs and instants, and where they went; None when nothing was
    archived: str | None = None


@dataclass(frozen=True, slots=True)
class ChainStart:
    """Where verification starts when the oldest rows were archived: the last archived row's seq and
    hash (checked when the rows were archived) and the seqs of the read templates among the archived
    rows, which later read blocks may still name."""

    seq: int
    hash: str
    templates: frozenset[int] = frozenset()


class BlockEvents(Protocol):
    """The AuditEvents of one stored read block, rendered on demand."""

    def __len__(self) -> int: ...

    def event(self, index: int) -> dict[str, Any]:
        """The ``index``-th record's AuditEvent (0 is the oldest)."""
        ...

    def events(self, patient: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
        """(position, event) newest first, only those about ``patient`` (``Patient/{id}``) if given."""
        ...


class ChainRules(Protocol):
    """The audit trail's rules (security/audit/rules.py). Pure: no I/O, no SQL."""

    @property
    def genesis(self) -> str:
        """The ``prev_hash`` of the first row."""
        ...

    @property
    def max_records(self) -> int:
        """The most reads one block row may hold (positions pack a record index below it)."""
        ...

    def link(self, prev_hash: str, data: bytes) -> str:
        """The hash of a row holding ``data`` after a row whose hash is ``prev_hash``."""
        ...

    def event_row(self, seq: int, prev_hash: str, event: Mapping[str, Any]) -> ChainRowTuple:
        """The chain row of one AuditEvent: canonical bytes, indexed columns and hash."""
        ...

    def verify(self, rows: Iterable[tuple[Any, ...]], anchors: Mapping[int, str] | None = None,
               start: ChainStart | None = None) -> ChainReport:
        """Check rows (as :data:`ChainRowTuple`) in seq order against the chain and the anchors
        (seq -> hash recorded elsewhere); ``start``: the rows begin after an archived prefix."""
        ...

    def template_bytes(self, caller: str | None, event: dict[str, Any]) -> bytes:
        """The stored (and hashed) bytes of a read template row."""
        ...

    def template_caller(self, data: bytes) -> str | None:
        """The caller (fhirUser) of a stored template; ValueError if ``data`` holds none."""
        ...

    def block_bytes(self, records: bytes, templates: dict[str, int], recorded: str) -> bytes:
        """The stored bytes of a read block: journal records joined by commas, their template keys'
        chain seqs, the first record's instant."""
        ...

    def block_patients(self, data: bytes) -> list[str]:
        """``Patient/{id}`` of every read of a stored block, sorted and distinct; ValueError if
        ``data`` holds no block."""
        ...

    def block(self, seq: int, data: bytes, template: Callable[[int], bytes]) -> BlockEvents:
        """The events of block row ``seq``; ``template`` gives a template row's bytes by its seq."""
        ...

    def block_event_id(self, event_id: str) -> tuple[int, int] | None:
        """(block seq, record index) of an event id of a read block (``r{seq}-{n}``), else None."""
        ...

    def position(self, seq: int, index: int = 0) -> int:
        """The paging position of record ``index`` of row ``seq`` (0 for a single-event row)."""
        ...

    def seq_of(self, position: int) -> int:
        """The chain row of a position."""
        ...

    def instant(self, micros: int) -> str:
        """An R4 instant (milliseconds) of a journal record's microseconds since the epoch."""
        ...

    def read_notices(self, blocks_by_patient: dict[str, list[int]]) -> list[tuple[str, str, str, bytes]]:
        """(topic, partition, key, payload) of the outbox notices of blocks chained together (AC-18)."""
        ...

    def others_read(self, records: bytes, callers: dict[str, str | None], patients: set[str]) -> set[str]:
        """The patients (bare ids) of a block's records whose data someone other than themself read."""
        ...


class AuditTx(Protocol):
    """What a write unit appends to the audit trail (``TxView.audit``); it commits with the unit."""

    def append_events(self, events: list[dict[str, Any]]) -> None:
        """Append AuditEvents to the chain (AC-14)."""
        ...

    def append_read_block(self, data: bytes, recorded: str, patients: list[str]) -> int:
        """Append one read block (``ChainRules.block_bytes``) about ``patients`` (``Patient/{id}``,
        indexed for ``AuditLog.events``); returns its chain seq."""
        ...

    def append_template(self, data: bytes, recorded: str) -> int:
        """Append a read template (``ChainRules.template_bytes``); returns its chain seq."""
        ...


class AuditLog(Protocol):
    """The audit trail of a store (``Store.audit``): the read-audit journal, reads, verification."""

    def journal_reads(self, lines: bytes) -> bool:
        """Append read-audit journal lines (security/read_gate.py), durable against a process crash on
        return; the backend chains them shortly after. False when the backend keeps no journal: the
        caller then stages the lines (:class:`ReadStaging`, when the log is one) or appends the records in
        a relaxed unit. Synchronous: it is on the read hot path."""
        ...

    async def sync(self) -> None:
        """Chain everything journaled so far (before audit data is read; ``events`` and ``event`` do)."""
        ...

    async def events(self, patient: str | None, limit: int, before: int | None = None
                     ) -> list[tuple[int, dict[str, Any]]]:
        """(position, AuditEvent) newest first, optionally of one ``Patient/id``. Positions are opaque
        increasing integers (a read block holds several events per chain row); ``before`` takes one to
        continue below it."""
        ...

    async def block_events(self, block_seq: int, patient: str) -> list[dict[str, Any]]:
        """The AuditEvents of one read block about ``patient`` (``Patient/{id}``), oldest first."""
        ...

    async def event(self, event_id: str) -> tuple[int, bytes] | None:
        """(position, JSON bytes) of one AuditEvent (never a whole block or a template)."""
        ...

    async def verify(self, anchors: Mapping[int, str] | None = None) -> ChainReport:
        """Check the whole trail: the chain, its indexes, and ``anchors`` (seq -> hash)."""
        ...


@runtime_checkable
class ReadStaging(Protocol):
    """An :class:`AuditLog` that keeps no read-audit journal on the read hot path (``journal_reads``
    returns False) but stages the same journal lines in its database (PostgreSQL: storage/postgres/
    read_audit.py). The lines are durable against a crash of the server process once ``stage_reads``
    returns — the journal's guarantee — and the backend chains them shortly after, in the chain's one order;
    ``sync`` chains everything staged so far by any process. The read gate (security/read_gate.py) awaits
    this before it answers a read."""

    async def stage_reads(self, lines: bytes) -> None:
        """Stage complete journal lines (``["T", ...]`` before the first ``["R", ...]`` naming its key);
        raises (the read is then refused) if they could not be made durable."""
        ...
