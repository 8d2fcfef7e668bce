"""Read audit on PostgreSQL: each read's record staged in ``read_audit`` by a per-process group commit
before the read is answered, then chained into ``audit_chain`` by whichever process gets there first.

SQLite's compiled read path writes each read's audit line into a memory-mapped journal file beside the
database (storage/sqlite/audit/journal.py): durable against a killed server process on return, chained by
the writer within a second. Several nodes share no file, so PostgreSQL stages the same lines in the
database instead:

* **Staging (the read's wait).** ``ReadStager.stage`` adds the read's lines to the process's open batch
  and waits for it; one batch at a time goes out as a single ``INSERT`` of one ``read_audit`` row (all its
  lines in one ``bytea``), committed with ``synchronous_commit = off`` — in PostgreSQL's WAL buffers
  when acknowledged, so it survives a crash of the server process (not of PostgreSQL itself: the
  journal's guarantee, which is the page cache's). While one batch is in flight the next fills, so under
  load one round trip carries every read that arrived meanwhile (group commit), and no read waits for
  the write lock (``store_head``) or a write unit: staging is an append to a table nothing else locks.
  A read is answered only after its batch committed; a batch that fails fails every read in it (503
  while the database is away: no read goes unaudited).
* **Chaining (background, any node).** Every ``CHAIN_SECONDS`` each process looks for staged rows
  (one index probe) and, if there are any, runs a write unit that holds ``store_head`` — the lock every
  unit that appends to the chain takes, so the chain keeps its one order across processes and nodes —
  claims the oldest rows (``DELETE … FOR UPDATE SKIP LOCKED … RETURNING``), chains their lines as read
  templates and read blocks exactly as the SQLite journal's ingest does (the injected ``ChainRules``),
  indexes the blocks by patient and queues the patients' notifications (AC-18). Claim and chain commit
  together, so each record is chained exactly once; rows a killed node staged are chained by the others
  (or by itself when it is back): nothing is leased to a node, so nothing waits for a lease to run out.
  ``PgAuditLog.sync`` does the same before audit data is read (access log, ``verify``, notifications).

Lines are the journal's (security/read_gate.py writes them): ``["T", key, caller, event]`` before the
first ``["R", key, micros, request_id, type, id, version, patient]`` naming ``key``. A template's key is
used by later records only once the batch holding its ``T`` line committed, so its row always has the
lower id and is chained first. The chain seq each key became is kept in ``kv`` (``tk:{key}``, as on
SQLite), so any process can chain records whose template another process chained.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from fhir_server.storage.audit import ChainRules
from fhir_server.storage.postgres.conn import QmarkConnection
from fhir_server.storage.sqlite.audit.chain import append_special, special_row
from fhir_server.storage.sqlite.audit.index import index_blocks

if TYPE_CHECKING:
    from fhir_server.storage.postgres.txview import PgTxView

log = logging.getLogger(__name__)

#: how often each process looks for staged reads to chain (SQLite's journal: INGEST_SECONDS)
CHAIN_SECONDS = 1.0
#: staged rows (batches) claimed by one chaining unit; more are chained by the next unit at once
CLAIM_ROWS = 500

TABLE_DDL = [
    """CREATE TABLE IF NOT EXISTS read_audit (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reads INTEGER NOT NULL,
    lines BYTEA NOT NULL,
    staged TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
)""",
    # staged rows are taken (deleted) by the chaining unit only; nothing rewrites one
    "CREATE OR REPLACE TRIGGER read_audit_no_update BEFORE UPDATE ON read_audit "
    "FOR EACH ROW EXECUTE FUNCTION kzfhir_append_only()",
]
# one statement, one round trip: the batch's commit waits for no WAL flush (set_config(..., true) is local
# to the statement's own transaction, autocommit being on)
STAGE_SQL = ("INSERT INTO read_audit (reads, lines) SELECT %s, %s "
             "FROM (SELECT set_config('synchronous_commit', 'off', true)) AS relaxed")
WAITING_SQL = "SELECT EXISTS (SELECT 1 FROM read_audit)"
PENDING_SQL = "SELECT count(*), coalesce(sum(reads), 0) FROM read_audit"
_CLAIM = ("DELETE FROM read_audit WHERE id IN (SELECT id FROM read_audit ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) "
          "RETURNING id, lines")
_KV = "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"

# Inside a run of record lines: each record's template key, and each record's patient (last field).
# Keys, ids and request ids never hold quotes or brackets (read_gate.py writes them).
_KEY = re.compile(rb'\["R","([^"]+)",')
_PATIENT = re.compile(rb',"([^"]*)"\]')
_MICROS = 2  # a record line's field holding the read's microseconds since the epoch
_TEMPLATE_KEY = re.compile(rb'^\["T","([^"]+)",')
#: templates a process keeps to repeat in later batches (one per caller and kind of access: few)
KEEP_TEMPLATES = 100_000


class ReadStager:
    """The process's group commit of read-audit lines: ``stage`` returns once its lines are in a committed
    ``read_audit`` row (``insert(reads, data)`` writes one)."""

    def __init__(self, insert: Callable[[int, bytes], Awaitable[None]]) -> None:
        self._insert = insert
        self._lines: list[bytes] = []
        self._batch: asyncio.Future[None] | None = None  # the open batch's commit
        self._flusher: asyncio.Task[None] | None = None
        self.reads = 0  # reads staged by this process (figures)
        self.batches = 0
        # Every staged row carries the T line of each template its records name, so that a row never depends
        # on another row: one lost with a failed-over primary (asynchronous replication), or staged to a new
        # primary after failover, must not leave later records naming a template no database holds — the
        # chaining would stop at them for every node. The chain holds each template once (``_chain``).
        self._templates: dict[bytes, bytes] = {}

    async def stage(self, lines: bytes) -> None:
        batch = self._batch
        if batch is None:
            batch = self._batch = asyncio.get_running_loop().create_future()
            batch.add_done_callback(_retrieved)
        self._lines.append(lines)
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush(), name="kzfhir-pg-read-audit")
        # shielded: a request cancelled while waiting leaves the batch (and the other reads in it) alone
        await asyncio.shield(batch)

    async def _flush(self) -> None:
        try:
            while self._lines:
                lines, batch = self._lines, self._batch
                self._lines, self._batch = [], None
                assert batch is not None
                try:
                    await self._insert(len(lines), self._self_contained(b"".join(lines)))
                except Exception as exc:  # every read of the batch is told, and refused
                    batch.set_exception(exc)
                    continue
                except BaseException:
                    batch.set_exception(RuntimeError("read audit staging was cancelled"))
                    raise
                self.reads += len(lines)
                self.batches += 1
                batch.set_result(None)
        finally:
            self._flusher = None

    def _self_contained(self, data: bytes) -> bytes:
        """``data`` with the remembered T line of every template its records name but it does not hold."""
        held: set[bytes] = set()
        for line in data.split(b"\n"):
            found = _TEMPLATE_KEY.match(line)
            if found is not None:
                held.add(found.group(1))
                if len(self._templates) >= KEEP_TEMPLATES:
                    self._templates.clear()  # kv keeps every chained template; only a repeat is lost
                self._templates[found.group(1)] = line
        missing = [self._templates[key] for key in set(_KEY.findall(data)) - held if key in self._templates]
        return b"\n".join(missing) + b"\n" + data if missing else data

    async def drain(self) -> None:
        """Wait for the batches in flight (closing the store)."""
        while self._flusher is not None:
            await asyncio.shield(self._flusher)


def _retrieved(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()  # a batch whose reads were all cancelled: its error is not "never retrieved"


class TemplateKeys:
    """Journal template keys -> (chain seq, the caller's fhirUser): remembered by this process once the unit
    that chained or looked them up committed, and found in ``kv`` (``tk:{key}``) and the template row
    otherwise (chained by another process, or before a restart)."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[int, str | None]] = {}

    def get(self, conn: QmarkConnection, key: str, rules: ChainRules, fresh: dict[str, tuple[int, str | None]]
            ) -> tuple[int, str | None]:
        known = fresh.get(key) or self._known.get(key)
        if known is None:
            found = conn.execute("SELECT value FROM kv WHERE key = ?", (f"tk:{key}",)).fetchone()
            if found is None:
                raise ValueError(f"staged read audit names unknown template {key!r}")
            data = special_row(conn, "t", int(found[0]))  # type: ignore[arg-type]
            # a template row archived since (kzfhir db archive): the block still names its seq; the caller is
            # not known any more, so every patient of the block is told (never fewer notices than due)
            known = fresh[key] = (int(found[0]), rules.template_caller(data) if data is not None else None)
        return known

    def chained(self, conn: QmarkConnection, key: str) -> bool:
        """Has some unit chained the template ``key`` already?"""
        if key in self._known:
            return True
        return conn.execute("SELECT 1 FROM kv WHERE key = ?", (f"tk:{key}",)).fetchone() is not None

    def keep(self, fresh: dict[str, tuple[int, str | None]]) -> Callable[[], None]:
        """What to run after the unit committed: its templates become known."""
        return lambda: self._known.update(fresh)


def chain_staged(view: PgTxView, keys: TemplateKeys, rules: ChainRules, limit: int = CLAIM_ROWS) -> int:
    """Inside a write unit (``store_head`` held): claim up to ``limit`` staged rows, oldest first, chain their
    lines, index the new blocks by patient and queue the notices of the reads; returns the rows claimed."""
    conn = view.audit.conn
    rows = conn.raw.execute(_CLAIM, [limit]).fetchall()
    if not rows:
        return 0
    rows.sort(key=lambda row: int(row[0]))
    fresh: dict[str, tuple[int, str | None]] = {}
    blocks: dict[int, list[str]] = {}
    notify: dict[str, list[int]] = {}
    # the rows' lines as one run, as the journal's ingest reads its file: blocks fill up to max_records
    _chain(conn, b"".join(bytes(data) for _, data in rows), keys, rules, fresh, blocks, notify)
    if blocks:
        index_blocks(conn, blocks, max(blocks))  # type: ignore[arg-type]
    for topic, partition, key, payload in rules.read_notices(notify):
        view.enqueue(topic, partition, key, payload)
    view.after_commit.append(keys.keep(fresh))
    return len(rows)


def _chain(conn: QmarkConnection, data: bytes, keys: TemplateKeys, rules: ChainRules,
           fresh: dict[str, tuple[int, str | None]], blocks: dict[int, list[str]],
           notify: dict[str, list[int]]) -> None:
    """Chain one staged row's lines: a template row per ``T`` line, a block row per run of up to
    ``rules.max_records`` records (records before a template stay before it)."""
    duck: Any = conn  # the sqlite functions' connection type, by duck typing
    run: list[bytes] = []
    for line in data.split(b"\n"):
        if line.startswith(b'["R",'):
            run.append(line)
            if len(run) >= rules.max_records:
                _block(conn, run, keys, rules, fresh, blocks, notify)
                run = []
        elif line:
            _, key, caller, event = orjson.loads(line)
            if key in fresh or keys.chained(conn, key):
                continue  # a template repeated by a later batch (ReadStager): the chain holds it once
            _block(conn, run, keys, rules, fresh, blocks, notify)
            run = []
            seq = append_special(duck, rules, "t", rules.template_bytes(caller, event), str(event.get("recorded", "")))
            conn.execute(_KV, (f"tk:{key}", str(seq)))
            fresh[key] = (seq, caller)
    _block(conn, run, keys, rules, fresh, blocks, notify)


def _block(conn: QmarkConnection, run: list[bytes], keys: TemplateKeys, rules: ChainRules,
           fresh: dict[str, tuple[int, str | None]], blocks: dict[int, list[str]],
           notify: dict[str, list[int]]) -> None:
    """One block row for ``run`` (record lines); ``notify`` gathers, per patient whose data someone else
    read, the blocks to name in their notification."""
    if not run:
        return
    records = b",".join(run)
    found = {raw.decode(): keys.get(conn, raw.decode(), rules, fresh) for raw in set(_KEY.findall(records))}
    recorded = rules.instant(int(orjson.loads(run[0])[_MICROS]))
    duck: Any = conn
    seq = append_special(duck, rules, "r", rules.block_bytes(records, {k: v[0] for k, v in found.items()}, recorded),
                         recorded)
    patients = {p.decode() for p in set(_PATIENT.findall(records))}
    blocks[seq] = sorted(f"Patient/{p}" for p in patients)
    callers = {key: caller for key, (_, caller) in found.items()}
    for patient in rules.others_read(records, callers, patients):
        notify.setdefault(patient, []).append(seq)
