"""A PostgreSQL server for the benchmarks, started by the bench itself (as tests/pg.py does for the tests),
but durable: ``fsync`` and ``synchronous_commit`` on, as a deployment runs it, so that its figures stand
beside SQLite's ``synchronous=FULL``. ``initdb`` into a temporary folder, ``postgres`` on a free loopback
port, stopped (and the folder removed) on ``stop()`` or at exit. Runs as the ``postgres`` user when we are
root (PostgreSQL refuses root)."""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.server import free_port
from tests.pg import NOT_FOUND, as_postgres_user, find_bin


class BenchCluster:
    def __init__(self) -> None:
        initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
        if initdb is None or pg_ctl is None or find_bin("postgres") is None:
            raise RuntimeError(NOT_FOUND)
        self.pg_ctl = pg_ctl
        self.folder = Path(tempfile.mkdtemp(prefix="kzfhir-bench-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self._names = itertools.count(1)
        self._template: str | None = None
        self._demote, uid, gid = as_postgres_user()
        if uid is not None and gid is not None:
            os.chown(self.folder, uid, gid)
        self._run(initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C")
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=200 "
                   "-c shared_buffers=256MB -c max_wal_size=1GB")  # durable: fsync, synchronous_commit on
        self._run(pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.folder / "log"), "-w", "-t", "60",
                  "start")
        atexit.register(self.stop)

    def _run(self, *args: str) -> None:
        done = subprocess.run(args, capture_output=True, text=True, preexec_fn=self._demote, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr or done.stdout}")

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def database(self, prefix: str = "bench", template: str | None = None) -> str:
        """A new database, empty or a copy of ``template``; its URL (the server creates the schema and
        publishes its definitions at its first start)."""
        import psycopg

        name = f"{prefix}_{next(self._names)}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
        return self.url(name)

    def published(self, start: Callable[[str], None]) -> str:
        """A database as after a server's first start (``start(url)`` starts and stops one on it), kept as the
        template of the next databases: each case then starts in seconds, not after publishing again."""
        if self._template is None:
            url = self.database("published")
            start(url)
            self._template = url.rsplit("/", 1)[-1]
        return self.database(template=self._template)

    def stop(self) -> None:
        if self.data.exists():
            subprocess.run([self.pg_ctl, "-D", str(self.data), "-m", "fast", "stop"], capture_output=True,
                           preexec_fn=self._demote, check=False)
        shutil.rmtree(self.folder, ignore_errors=True)
