"""The read-audit journal of the SQLite store: each read's audit record, durable before the response.

A committed SQLite transaction per read (or per loop turn of reads) costs tens of microseconds and
makes every read wait for it. Instead the event loop appends one line per read to a journal file
beside the database, mapped shared into memory (a copy of about 100 bytes, no system call): the
bytes are then in the operating system's page cache and survive a killed server process — the same
guarantee as a SQLite commit in WAL mode with ``synchronous=NORMAL``, which the relaxed audit units
had before (and as a ``write()``, at a third of its cost). The writer thread *ingests* the journal
into the hash-chained ``audit_chain`` (read templates and read blocks, encoded by the injected
``ChainRules``: security/audit/read_blocks.py) within ``INGEST_SECONDS`` or on its next commit, fsyncs
as every commit does, and moves the ingested offset in the same transaction, so a record is chained exactly
once. Whatever reads audit data first brings the chain up to date (``SqliteAuditLog.sync``);
opening the store ingests what a previous process left behind.

Lines (JSON arrays, one per line; a torn last line, possible only on power loss, is left unread):

* ``["T", key, caller, event]`` — a read template (written before the first record using it);
* ``["R", key, micros, request_id, type, id, version, patient]`` — one read.

Template keys are unique per process (``context.next_request_id`` style); the chain seq each key
became is kept in ``kv`` (``tk:{key}``) so records ingested after a restart still find it. The
patient notifications of the reads (AC-18, ``ChainRules.read_notices``) are queued in the outbox
in the transaction that chains them.
Files are ``{database}.audit-journal.{n}``, ``FILE_BYTES`` long and zero-filled (the data ends at the
first zero byte; JSON never holds one); each process starts a new file, the loop starts file n+1
when one is full, and the writer deletes a file once it is ingested to its end and a later one
exists.
"""

from __future__ import annotations

import mmap
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson

from fhir_server.storage.audit import ChainRules
from fhir_server.storage.sqlite.audit.chain import append_special, special_row
from fhir_server.storage.sqlite.outbox import enqueue

FILE_BYTES = 32 * 1024 * 1024
ALLOCATE_BYTES = 1024 * 1024  # disk blocks are allocated this far ahead of the data
INGEST_SECONDS = 1.0
OFFSET_KEY = "audit-journal"
_NAME = re.compile(r"\.audit-journal\.(\d{1,9})$")
# Inside a run of record lines: each record's template key, and each record's patient (last field).
# Keys, ids and request ids never hold quotes or brackets (read_gate.py writes them).
_KEY = re.compile(rb'\["R","([^"]+)",')
_PATIENT = re.compile(rb',"([^"]*)"\]')
_MICROS = 2  # a record line's field holding the read's microseconds since the epoch


class AuditJournal:
    """Append side (event loop) and ingest side (writer thread) of one database's journal."""

    def __init__(self, database: str) -> None:
        self.base = database + ".audit-journal"
        self._lock = threading.Lock()  # the loop's rotation against the writer's reading
        self._map: mmap.mmap | None = None
        self._fd = -1
        self._allocated = 0
        self._number = 0
        self._pos = 0
        self._ends: dict[int, int] = {}  # files this process filled: where their data ends
        # appends so far (written by the loop only) and how many of them the writer has chained (written
        # by the writer only): one writer per counter, so no lock is needed to tell whether work waits
        self.appended = 0
        self.ingested = -1  # -1: what a previous process left has not been looked at yet

    def _files(self) -> list[int]:
        folder = Path(self.base).parent
        prefix = Path(self.base).name + "."
        numbers = []
        for entry in folder.iterdir() if folder.exists() else []:
            found = _NAME.search(entry.name)
            if found and entry.name.startswith(prefix):
                numbers.append(int(found.group(1)))
        return sorted(numbers)

    # -- the loop's side ------------------------------------------------------------------------
    def _start_file(self, number: int) -> None:
        fd = os.open(f"{self.base}.{number}", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            # FILE_BYTES long but sparse (the data ends at the first zero byte), with disk blocks allocated
            # ALLOCATE_BYTES ahead of the data (``_allocate``): a full disk is an error there, where the
            # read fails closed, never a SIGBUS on a write fault in the map — and an idle server's journal
            # takes 1 MB of disk, not 32 (thousands of test stores filled a disk with them).
            os.ftruncate(fd, FILE_BYTES)
            os.posix_fallocate(fd, 0, ALLOCATE_BYTES)
            self._map = mmap.mmap(fd, FILE_BYTES)
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._allocated = fd, ALLOCATE_BYTES
        self._number, self._pos = number, 0

    def _allocate(self, end: int) -> None:
        """Disk blocks for the map up to ``end`` (and one step further), before any byte is copied there."""
        target = min(FILE_BYTES, (end // ALLOCATE_BYTES + 1) * ALLOCATE_BYTES)
        os.posix_fallocate(self._fd, self._allocated, target - self._allocated)
        self._allocated = target

    def _close_file(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def open(self) -> None:
        with self._lock:
            files = self._files()
            self._start_file((files[-1] + 1) if files else 1)  # a fresh file per process

    def close(self) -> None:
        with self._lock:
            if self._map is not None:
                self._map.flush()  # a clean shutdown also puts the tail on disk
            self._close_file()

    def append(self, data: bytes) -> None:
        """Append whole lines; durable against a process crash once this returns. The file is mapped
        shared: the bytes are in the operating system's page cache as soon as they are copied, as
        after a ``write()``, without a system call."""
        if self._map is None:
            raise RuntimeError("the audit journal is not open")
        end = self._pos + len(data)
        if end > FILE_BYTES:
            if len(data) > FILE_BYTES:
                raise ValueError("audit journal line longer than a journal file")
            with self._lock:
                self._ends[self._number] = self._pos
                self._close_file()
                self._start_file(self._number + 1)
            end = len(data)
        if end > self._allocated:
            self._allocate(end)
        assert self._map is not None
        self._map[self._pos:end] = data
        self._pos = end
        self.appended += 1

    # -- the writer's side ----------------------------------------------------------------------
    def _data_end(self, number: int, path: str) -> int:
        if number == self._number and self._map is not None:
            return self._pos
        if number in self._ends:
            return self._ends[number]
        with open(path, "rb") as handle:  # a file a previous process left: its data ends at a zero byte
            found, offset = -1, 0
            while found < 0:
                chunk = handle.read(1 << 20)
                if not chunk:
                    return offset
                found = chunk.find(b"\x00")
                offset += len(chunk) if found < 0 else found
            return offset

    def unchained(self, conn: sqlite3.Connection) -> Iterator[tuple[int, int, bytes]]:
        """(file number, start offset, complete lines) of every file past the chained offset."""
        row = conn.execute("SELECT value FROM kv WHERE key = ?", (OFFSET_KEY,)).fetchone() \
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'kv'").fetchone() else None
        with self._lock:
            files = self._files()
            number, offset = (int(x) for x in str(row[0]).split(":")) if row else (files[0] if files else 0, 0)
            ends = {n: self._data_end(n, f"{self.base}.{n}") for n in files if n >= number}
        for current in sorted(ends):
            start = offset if current == number else 0
            with open(f"{self.base}.{current}", "rb") as handle:
                handle.seek(start)
                data = handle.read(max(0, ends[current] - start))
            yield current, start, data[:data.rfind(b"\n") + 1]  # complete lines only

    def ingest(self, conn: sqlite3.Connection, keys: TemplateCache, rules: ChainRules) -> dict[int, list[str]]:
        """Chain every complete line not yet ingested, inside the caller's open transaction, queue the
        notifications of the reads (AC-18) and move the offset; returns the new read blocks
        (seq -> patients) for the patients index."""
        seen = self.appended  # before the data ends are read: everything up to it is in the file
        blocks: dict[int, list[str]] = {}
        notify: dict[str, list[int]] = {}
        mark: str | None = None
        for number, start, lines in self.unchained(conn):
            if lines:
                blocks.update(self._chain(conn, lines, keys, rules, notify))
            mark = f"{number}:{start + len(lines)}"
        for topic, partition, key, payload in rules.read_notices(notify):
            enqueue(conn, topic, partition, key, payload, rules.instant(time.time_ns() // 1000))
        if mark is not None:
            conn.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (OFFSET_KEY, mark))
        self.ingested = seen
        return blocks

    @property
    def pending(self) -> bool:
        """Lines may be waiting to be chained."""
        return self.appended != self.ingested

    def forget_ingested(self, conn: sqlite3.Connection) -> None:
        """After COMMIT: delete files wholly ingested that a later file follows."""
        row = conn.execute("SELECT value FROM kv WHERE key = ?", (OFFSET_KEY,)).fetchone()
        if row is None:
            return
        number = int(str(row[0]).split(":")[0])
        with self._lock:
            for older in [n for n in self._files() if n < number]:
                Path(f"{self.base}.{older}").unlink(missing_ok=True)

    def _chain(self, conn: sqlite3.Connection, data: bytes, keys: TemplateCache, rules: ChainRules,
               notify: dict[str, list[int]]) -> dict[int, list[str]]:
        """Chain complete lines: a template row per ``T`` line, a block row per run of up to
        ``rules.max_records`` records. Records are stored as written (keys and patients are picked out of the
        bytes; the line formats come from security/read_gate.py only)."""
        blocks: dict[int, list[str]] = {}
        lines = data.split(b"\n")
        lines.pop()  # after the last newline
        if not data.startswith(b'["T",') and b'\n["T",' not in data:  # records only: the usual chunk
            for start in range(0, len(lines), rules.max_records):
                _block(conn, lines[start:start + rules.max_records], keys, rules, blocks, notify)
            return blocks
        run: list[bytes] = []
        for line in lines:
            if line.startswith(b'["R",'):
                run.append(line)
                if len(run) >= rules.max_records:
                    _block(conn, run, keys, rules, blocks, notify)
                    run = []
            elif line:
                _block(conn, run, keys, rules, blocks, notify)  # records before a template stay before it
                run = []
                _, key, caller, event = orjson.loads(line)
                seq = append_special(conn, rules, "t", rules.template_bytes(caller, event),
                                     str(event.get("recorded", "")))
                keys.add(conn, key, seq, caller)
        _block(conn, run, keys, rules, blocks, notify)
        return blocks


def unchained_lines(database: str) -> int:
    """Complete journal lines beside ``database`` that are not chained yet (read-only; for
    ``kzfhir audit verify``: a killed server's last reads are chained when a server next opens)."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return sum(lines.count(b"\n") for _, _, lines in AuditJournal(database).unchained(conn))
    finally:
        conn.close()


class TemplateCache:
    """Journal template keys -> (chain seq, the caller's fhirUser); kept by the writer, and found again
    in ``kv`` (``tk:{key}``) and the template row after a restart."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[int, str | None]] = {}

    def add(self, conn: sqlite3.Connection, key: str, seq: int, caller: str | None) -> None:
        self._known[key] = (seq, caller)
        conn.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (f"tk:{key}", str(seq)))

    def get(self, conn: sqlite3.Connection, key: str, rules: ChainRules) -> tuple[int, str | None]:
        known = self._known.get(key)
        if known is None:
            found = conn.execute("SELECT value FROM kv WHERE key = ?", (f"tk:{key}",)).fetchone()
            data = special_row(conn, "t", int(found[0])) if found else None
            if data is None:
                raise ValueError(f"audit journal record names unknown template {key!r}")
            known = self._known[key] = (int(found[0]), rules.template_caller(data))
        return known


def _block(conn: sqlite3.Connection, run: list[bytes], keys: TemplateCache, rules: ChainRules,
           blocks: dict[int, list[str]], notify: dict[str, list[int]]) -> None:
    """One block row for ``run`` (record lines); ``notify`` gathers, per patient whose data someone
    else read, the blocks to name in their notification."""
    if not run:
        return
    records = b",".join(run)
    found = {raw.decode(): keys.get(conn, raw.decode(), rules) for raw in set(_KEY.findall(records))}
    first = orjson.loads(run[0])
    recorded = rules.instant(int(first[_MICROS]))
    seq = append_special(conn, rules, "r", rules.block_bytes(records, {k: v[0] for k, v in found.items()}, recorded),
                         recorded)
    patients = {p.decode() for p in set(_PATIENT.findall(records))}
    blocks[seq] = sorted(f"Patient/{p}" for p in patients)
    callers = {key: caller for key, (_, caller) in found.items()}
    for patient in rules.others_read(records, callers, patients):
        notify.setdefault(patient, []).append(seq)
