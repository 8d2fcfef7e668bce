"""A real PostgreSQL for the tests, started by the project (issue 11, Proof).

``initdb`` into a temporary folder, ``postgres`` on a free port (a unix socket in that folder and
127.0.0.1), one database per test cloned from a template that already holds the store's schema, and
the server stopped when the session ends. Nothing starts until a test asks for it (``PgCluster.get``),
so SQLite-only runs never pay for it. The binaries are found on PATH, then under
``/usr/lib/postgresql/*/bin`` (Debian's ``postgresql`` package; ``make test`` installs it when absent).
When none is found the PostgreSQL tests FAIL with that message: they must never skip in a clean clone.

Running as root (containers, CI), the cluster runs as the ``postgres`` user when it exists (PostgreSQL
refuses to run as root).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

NOT_FOUND = ("PostgreSQL is not installed: no initdb/pg_ctl/postgres on PATH or in /usr/lib/postgresql/*/bin. "
             "`make test` installs Debian's `postgresql` package (apt-get install postgresql); install it, or "
             "put a PostgreSQL 15+ bin folder on PATH.")
TEMPLATE = "kzfhir_template"  # the store's schema
PUBLISHED = "kzfhir_published"  # the schema and what the server publishes at start (the IG, terminology ...)


class PostgresUnavailable(RuntimeError):
    pass


def find_bin(name: str) -> str | None:
    """``name`` on PATH, else in the newest ``/usr/lib/postgresql/<version>/bin``."""
    found = shutil.which(name)
    if found:
        return found

    def version(path: str) -> int:
        part = Path(path).parts[-3]
        return int(part) if part.isdigit() else 0

    for candidate in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=version, reverse=True):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def as_postgres_user() -> tuple[Callable[[], None] | None, int | None, int | None]:
    """(preexec function, uid, gid) to run the server as ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return None, None, None
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        user = pwd.getpwnam("nobody")
    uid, gid = user.pw_uid, user.pw_gid

    def preexec() -> None:
        os.setgid(gid)
        os.setuid(uid)

    return preexec, uid, gid


class PgCluster:
    """One PostgreSQL server for this test process (one per xdist worker)."""

    _instance: PgCluster | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        binaries = {name: find_bin(name) for name in ("initdb", "pg_ctl", "postgres")}
        missing = [name for name, path in binaries.items() if path is None]
        if missing:
            raise PostgresUnavailable(NOT_FOUND + f" (missing: {', '.join(missing)})")
        self.initdb, self.pg_ctl = str(binaries["initdb"]), str(binaries["pg_ctl"])
        self.folder = Path(tempfile.mkdtemp(prefix="kzfhir-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self._names = itertools.count(1)
        self._preexec, uid, gid = as_postgres_user()
        if uid is not None and gid is not None:
            os.chown(self.folder, uid, gid)
        self._start()
        atexit.register(self.stop)
        self._stop_on_sigterm()

    def _stop_on_sigterm(self) -> None:
        """A test run ended by SIGTERM (``timeout``, CI cancelling) stops its PostgreSQL too: atexit
        handlers do not run then, and a running cluster would hold its folder in /tmp."""
        previous = signal.getsignal(signal.SIGTERM)

        def on_term(signum: int, frame: object) -> None:
            self.stop()
            if callable(previous):
                previous(signum, frame)  # type: ignore[arg-type]
            raise SystemExit(128 + signum)

        with contextlib.suppress(ValueError):  # not the main thread: atexit only
            signal.signal(signal.SIGTERM, on_term)

    @classmethod
    def get(cls) -> PgCluster:
        """The process's cluster, started on first use."""
        with cls._lock:
            if cls._instance is None:
                cls._instance = PgCluster()
            return cls._instance

    def _run(self, *args: str) -> None:
        done = subprocess.run(args, capture_output=True, text=True, preexec_fn=self._preexec, check=False)
        if done.returncode != 0:
            raise PostgresUnavailable(f"{' '.join(args[:2])} failed ({done.returncode}): {done.stderr or done.stdout}")

    def _start(self) -> None:
        self._run(self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")
        # throwaway data: no fsync, WAL kept small (a database per test adds up on a shared disk); WAL
        # senders so that PgNode can copy it (pg_basebackup) instead of publishing its templates again
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
                   "-c shared_buffers=64MB -c wal_level=replica -c max_wal_senders=4 -c max_wal_size=64MB "
                   "-c min_wal_size=32MB")
        self._run(self.pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.folder / "log"), "-w",
                  "-t", "60", "start")
        self._admin(f"CREATE DATABASE {TEMPLATE}")
        self._template_ready = False

    @property
    def base_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    def url(self, database: str) -> str:
        return f"{self.base_url}/{database}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]  # our own DDL text

    def _prepare_templates(self) -> None:
        """The store's schema, created once into the template; and a second template that also holds what
        the server publishes at start (definitions/publish.py), so that an HTTP test's server finds it
        current instead of writing it again (about 2 s a test). Every database is a clone of one."""
        from fhir_server.backends import postgres_store

        async def create() -> None:
            store = postgres_store(self.url(TEMPLATE), pool_size=1)
            await store.open()
            await store.close()

        async def publish() -> None:
            from fhir_server.api.app import build_services
            from fhir_server.config import Settings
            from fhir_server.definitions.publish import publish as publish_definitions

            services = build_services(Settings(database=self.url(PUBLISHED), security_enabled=False,
                                               dev_key_path=self.folder / "dev-jwks.json"))
            await services.store.open()
            try:
                await publish_definitions(services)
            finally:
                await services.store.close()

        _run_async(create)
        self._admin(f"CREATE DATABASE {PUBLISHED} TEMPLATE {TEMPLATE}")
        _run_async(publish)
        self._template_ready = True

    def ensure_templates(self) -> None:
        with self._lock:
            if not self._template_ready:
                self._prepare_templates()

    def database(self, prefix: str = "t", *, published: bool = False) -> str:
        """A fresh database (schema included; ``published``: and the server's own conformance resources);
        returns its URL."""
        with self._lock:
            if not self._template_ready:
                self._prepare_templates()
            name = f"{prefix}_{os.getpid()}_{next(self._names)}"
            self._admin(f"CREATE DATABASE {name} TEMPLATE {PUBLISHED if published else TEMPLATE}")
        return self.url(name)

    def drop(self, url: str) -> None:
        """Drop a database made by :meth:`database` (connections still open are ended)."""
        name = url.rsplit("/", 1)[-1]
        if name.isidentifier() and name not in (TEMPLATE, PUBLISHED):
            self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        if self.data.exists():
            subprocess.run([self.pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"], capture_output=True,
                           preexec_fn=self._preexec, check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


def _loop_running() -> bool:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _run_async(make: Callable[[], object]) -> None:
    """Run a coroutine function to completion, on a thread of its own when a loop is running here."""
    import asyncio

    if _loop_running():
        _in_thread(make)
    else:
        asyncio.run(make())  # type: ignore[arg-type]


def _in_thread(make: Callable[[], object]) -> None:
    """Run a coroutine to completion on a loop of its own (the caller's loop is busy)."""
    import asyncio

    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(make())  # type: ignore[arg-type]
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    if errors:
        raise errors[0]


def fresh_database(prefix: str = "t", *, published: bool = False) -> str:
    """The URL of a fresh database on this process's test cluster (started on first use); ``published``:
    holding what the server publishes at start, as after a first start (the HTTP suites' settings)."""
    return PgCluster.get().database(prefix, published=published)


def release_database(database: object) -> None:
    """Drop a test's PostgreSQL database (``fresh_database``) when it is one; SQLite files stay in tmp_path."""
    if isinstance(database, str) and database.startswith("postgresql://") and PgCluster._instance is not None:
        PgCluster._instance.drop(database)


def test_backend() -> str:
    """``KZFHIR_TEST_BACKEND``: which store the HTTP suites' ``settings`` fixtures use (sqlite default)."""
    chosen = os.environ.get("KZFHIR_TEST_BACKEND", "sqlite").strip().lower() or "sqlite"
    if chosen not in ("sqlite", "postgres"):
        raise ValueError(f"KZFHIR_TEST_BACKEND must be sqlite or postgres, not {chosen!r}")
    return chosen


# -- servers of a test's own: stopped, restarted, replicated, promoted (issue 11 §3) ----------------------
class PgNode:
    """A PostgreSQL server of one test (module) alone, which it may stop, restart, replicate and promote —
    never the process's shared :class:`PgCluster`. It starts as a copy of that cluster (``pg_basebackup``:
    its templates come along, so a database with the published definitions is a ``CREATE DATABASE`` away,
    not a server start publishing them), on a port and in a folder of its own, as a primary with
    ``wal_level=replica`` and WAL senders; :meth:`standby` makes a hot standby of it (``pg_basebackup -R``:
    streaming replication on loopback), :meth:`promote` ends a standby's recovery. Removed at exit when
    the test did not remove it."""

    def __init__(self, *, primary: PgNode | None = None) -> None:
        binaries = {name: find_bin(name) for name in ("pg_ctl", "postgres", "pg_basebackup")}
        missing = [name for name, path in binaries.items() if path is None]
        if missing:
            raise PostgresUnavailable(NOT_FOUND + f" (missing: {', '.join(missing)})")
        self.bins = {name: str(path) for name, path in binaries.items()}
        self.folder = Path(tempfile.mkdtemp(prefix="kzfhir-pgnode-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self._names = itertools.count(1)
        self._preexec, uid, gid = as_postgres_user()
        if uid is not None and gid is not None:
            os.chown(self.folder, uid, gid)
        atexit.register(self.remove)
        if primary is None:  # an independent primary: the shared cluster's data, no standby.signal
            cluster = PgCluster.get()
            cluster.ensure_templates()
            source, follow = cluster.port, []
        else:  # a copy that follows the primary: standby.signal and primary_conninfo written by -R
            source, follow = primary.port, ["-R"]
        self._run(self.bins["pg_basebackup"], "-D", str(self.data), "-h", "127.0.0.1", "-p", str(source),
                  "-U", "postgres", *follow, "-X", "stream", "-c", "fast", "--no-sync")
        self.start()

    def _run(self, *args: str) -> None:
        done = subprocess.run(args, capture_output=True, text=True, preexec_fn=self._preexec, check=False)
        if done.returncode != 0:
            raise PostgresUnavailable(f"{' '.join(args[:2])} failed ({done.returncode}): {done.stderr or done.stdout}")

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c full_page_writes=off -c max_connections=100 -c shared_buffers=32MB -c wal_level=replica "
                   "-c max_wal_senders=5 -c wal_keep_size=64MB -c hot_standby=on -c max_wal_size=64MB "
                   "-c wal_receiver_status_interval=1s -c hot_standby_feedback=on")
        self._run(self.bins["pg_ctl"], "-D", str(self.data), "-o", options, "-l", str(self.folder / "log"), "-w",
                  "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast``: sessions are ended (57P01, as an administrator's shutdown); ``immediate``: as a crash."""
        self._run(self.bins["pg_ctl"], "-D", str(self.data), "-m", mode, "-w", "stop")

    def promote(self) -> None:
        """End recovery: this standby becomes a primary (``pg_ctl promote``, as Patroni does)."""
        self._run(self.bins["pg_ctl"], "-D", str(self.data), "-w", "-t", "60", "promote")

    def standby(self) -> PgNode:
        """A hot standby of this server, streaming from it."""
        return PgNode(primary=self)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def database(self, prefix: str = "n") -> str:
        """A new database holding the schema and the published definitions (the shared cluster's
        template, copied with the data); returns its name."""
        name = f"{prefix}_{next(self._names)}"
        self.admin(f"CREATE DATABASE {name} TEMPLATE {PUBLISHED}")
        return name

    def admin(self, sql: str, database: str = "postgres") -> list[tuple[object, ...]]:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=5) as conn:
            cur = conn.execute(sql)  # type: ignore[arg-type]  # our own SQL text
            return cur.fetchall() if cur.description else []

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run([self.bins["pg_ctl"], "-D", str(self.data), "-m", "immediate", "stop"],
                           capture_output=True, preexec_fn=self._preexec, check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


def wait_replayed(primary: PgNode, standby: PgNode, database: str, seconds: float = 15.0) -> None:
    """Wait until ``standby`` has replayed everything ``primary`` has written so far."""
    import time

    target = primary.admin("SELECT pg_current_wal_lsn()::text")[0][0]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done = standby.admin(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn", database)[0][0]
        if done:
            return
        time.sleep(0.02)
    raise AssertionError(f"the standby did not replay {target} in {seconds} s")


def drain(proc: subprocess.Popen[bytes], keep: int = 2000) -> list[str]:
    """Read a live server's stderr on a thread of its own (its last ``keep`` lines, returned list): a
    server whose database is away logs a line for every failed attempt, and a pipe nobody reads fills
    up and stops the server in its next write."""
    lines: list[str] = []
    stream = proc.stderr

    def read() -> None:
        if stream is None:
            return
        for raw in iter(stream.readline, b""):
            lines.append(raw.decode("utf-8", "replace").rstrip())
            if len(lines) > keep:
                del lines[: len(lines) - keep]

    threading.Thread(target=read, daemon=True, name="server-stderr").start()
    return lines


# -- pgbouncer in transaction mode in front of the shared cluster (issue 11 §4) ----------------------------
PGBOUNCER_NOT_FOUND = ("pgbouncer is not installed: no pgbouncer on PATH or in /usr/sbin. `make test` installs "
                       "Debian's `pgbouncer` package with PostgreSQL (`make postgres`).")


class PgBouncer:
    """pgbouncer in **transaction** pooling mode, for this process, in front of its :class:`PgCluster`: any
    database name is routed to the cluster (``* =``), and the server pool is small (2 a database) so that
    a client's consecutive transactions land on different server connections, as they do in production.
    Started on first use (:meth:`get`), stopped at exit."""

    _instance: PgBouncer | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        binary = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if os.access("/usr/sbin/pgbouncer", os.X_OK)
                                               else None)
        if binary is None:
            raise PostgresUnavailable(PGBOUNCER_NOT_FOUND)
        cluster = PgCluster.get()
        cluster.ensure_templates()
        self.folder = Path(tempfile.mkdtemp(prefix="kzfhir-pgbouncer-"))
        self.port = _free_port()
        self._preexec, uid, gid = as_postgres_user()
        (self.folder / "users.txt").write_text('"postgres" ""\n')
        (self.folder / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host=127.0.0.1 port={cluster.port}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir = {self.folder}\n"
            f"auth_type = trust\nauth_file = {self.folder / 'users.txt'}\n"
            "pool_mode = transaction\ndefault_pool_size = 2\nreserve_pool_size = 0\nmax_client_conn = 500\n"
            f"logfile = {self.folder / 'pgbouncer.log'}\npidfile = {self.folder / 'pgbouncer.pid'}\n"
            "server_reset_query =\nadmin_users = postgres\n")
        if uid is not None and gid is not None:
            for path in (self.folder, *self.folder.iterdir()):
                os.chown(path, uid, gid)
        self._proc = subprocess.Popen([binary, str(self.folder / "pgbouncer.ini")], preexec_fn=self._preexec,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        atexit.register(self.stop)
        self._wait()

    def _wait(self, seconds: float = 15.0) -> None:
        import time

        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                log = self.folder / "pgbouncer.log"
                raise PostgresUnavailable(f"pgbouncer exited ({self._proc.returncode}): "
                                          f"{log.read_text()[-2000:] if log.exists() else ''}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            time.sleep(0.05)
        raise PostgresUnavailable(f"pgbouncer did not listen on {self.port} within {seconds:g} s")

    @classmethod
    def get(cls) -> PgBouncer:
        with cls._lock:
            if cls._instance is None:
                cls._instance = PgBouncer()
            return cls._instance

    def url(self, direct_url: str) -> str:
        """The same database as ``direct_url`` (a URL of the shared cluster), through pgbouncer."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{direct_url.rsplit('/', 1)[-1]}"

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=10)
            if self._proc.poll() is None:
                self._proc.kill()
        shutil.rmtree(self.folder, ignore_errors=True)
