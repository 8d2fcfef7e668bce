"""One server process per SQLite database file (issue 11 §3: a second `kzfhir serve` on the same file
started without complaint and broke the first, every write then answering 500).

The embedded store is single-process by design: one writer thread orders all writes, the read-audit
journal and the facts cache live in that process. Opening a store takes an exclusive ``flock`` on
``{database}.lock`` (holding the owner's pid, for the message) for as long as the store is open; a
second process is refused at start with a clear message. Within one process the lock is shared by
reference count, so tests and tools that reopen a file in turn keep working. ``flock`` locks go away
with their process, so a killed server never leaves a stale lock behind (the file itself stays).
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path


class DatabaseInUse(RuntimeError):
    """Another process has this SQLite database open."""


_held: dict[str, tuple[int, int]] = {}  # lock path -> (fd, references)
_guard = threading.Lock()


def lock_path(database: str) -> str:
    return str(Path(database).resolve()) + ".lock"


def acquire(database: str) -> None:
    """Hold the database for this process, or raise :class:`DatabaseInUse`."""
    path = lock_path(database)
    with _guard:
        if path in _held:
            fd, count = _held[path]
            _held[path] = (fd, count + 1)
            return
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise DatabaseInUse(f"database {database} is in use by another kzfhir process (pid {owner}); "
                                "the SQLite store serves one process: stop it, use another --database, or run "
                                "several workers on PostgreSQL (docs/postgres.md)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        _held[path] = (fd, 1)


def release(database: str) -> None:
    path = lock_path(database)
    with _guard:
        held = _held.get(path)
        if held is None:
            return
        fd, count = held
        if count > 1:
            _held[path] = (fd, count - 1)
            return
        del _held[path]
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def check_free(database: str) -> None:
    """Raise :class:`DatabaseInUse` now when another process holds the database (a clean message at
    start, before the server's lifespan opens the store and takes the lock for good)."""
    if not Path(database).parent.exists():
        return
    acquire(database)
    release(database)
