"""A psycopg connection that speaks the SQLite backend's query dialect: ``?`` placeholders; and what the
store's connections share: their options, and what a lost database looks like (503, ``Retry-After``).

The search planner, history, outbox and audit queries of ``storage/sqlite/`` are written with ``?``
and standard SQL (the few differences come from ``search/dialect.py``); through :class:`QmarkConnection`
they run on PostgreSQL unchanged. ``?`` never appears in their SQL text other than as a placeholder, and
``%`` only inside parameters (LIKE patterns are arguments), so the translation is a textual one, cached.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from fhir_server.errors import FhirError
from fhir_server.i18n import msg


@lru_cache(maxsize=4096)
def to_pyformat(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (and a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class QmarkConnection:
    """The sqlite3-like face of one psycopg connection: ``execute`` returns a cursor with ``fetchone``,
    ``fetchall`` and iteration; ``executemany`` for batches."""

    __slots__ = ("raw",)

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, sql: str, args: Sequence[Any] | None = None) -> psycopg.Cursor[Any]:
        return self.raw.execute(to_pyformat(sql), list(args or ()))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        batch = [list(r) for r in rows]
        if batch:
            with self.raw.cursor() as cur:
                cur.executemany(to_pyformat(sql), batch)

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE


# -- the database unavailable (issue 11 §3: resilience) --------------------------------------------------
#: what a client is told to wait before retrying a request the database could not serve (Retry-After)
RETRY_AFTER_SECONDS = 5
#: libpq's connect_timeout (per host of a multi-host URL) unless the URL names one: a host that does not
#: answer at all costs this long before the next host is tried or the attempt fails
CONNECT_TIMEOUT_SECONDS = 5


class DatabaseUnavailable(FhirError):
    """PostgreSQL cannot serve the request now (refused, restarting, shut down, no connection within the
    pool's wait, or a read-only server where the primary was): 503 with ``Retry-After``, issue code
    ``transient``. A FhirError, so that every path — interactions, search, Bundles, operations, the
    compiled read path — answers it as it answers any other error, never as a 500."""

    def __init__(self, reason: str, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__("unavailable", msg("store.unavailable", reason=reason, seconds=retry_after),
                         headers={"Retry-After": str(retry_after)})
        self.reason = reason


def is_unavailable(exc: BaseException) -> bool:
    """Does ``exc`` say the database is out of reach, rather than that the statement was wrong? Lost or
    refused connections, an administrator's or a failover's shutdown (57P01-57P03), a pool that had no
    connection to give in time, and a write refused by a server in recovery (25006: connected to a
    standby where the primary used to be). A statement timeout (57014) is not: the database answered."""
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return False
    return isinstance(exc, psycopg.OperationalError | psycopg.errors.ReadOnlySqlTransaction)


def reason_of(exc: BaseException) -> str:
    """A one-line reason for the client and the log, without connection strings (they may hold a
    password): the error's class and the first line of its text."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if "://" in first or "password" in first.lower():
        first = ""
    return f"{type(exc).__name__}: {first}"[:200] if first else type(exc).__name__


def connect_kwargs(url: str, statement_timeout_ms: int, *, transaction_pooling: bool = False) -> dict[str, Any]:
    """The keyword arguments of every connection of a store: autocommit, the statement timeout as a
    startup option, and a connect timeout unless ``url`` sets one.

    ``transaction_pooling``: ``url`` is a pooler in transaction mode (pgbouncer ``pool_mode=transaction``),
    which hands each transaction to whichever server connection is free. psycopg's prepared statements
    (prepared on one server connection, executed later on another) then fail, so none is prepared; and
    pgbouncer before 1.20 refuses the ``options`` startup parameter (1.20+ only for tracked parameters),
    so the timeout is the role's (``ALTER ROLE … SET statement_timeout``), checked at open
    (store.py, ``_check_pooled_timeout``)."""
    kwargs: dict[str, Any] = {"autocommit": True}
    if transaction_pooling:
        kwargs["prepare_threshold"] = None
    elif statement_timeout_ms > 0:
        kwargs["options"] = f"-c statement_timeout={int(statement_timeout_ms)}"
    if "connect_timeout" not in conninfo_to_dict(url):
        kwargs["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
    return kwargs


def safe_name(url: str) -> str:
    """``host:port/dbname`` of a URL (the hosts of a multi-host one joined by commas), never its user or
    password: the label of a replica in /metrics and /ready."""
    params = conninfo_to_dict(url)
    hosts = str(params.get("host", "") or "localhost").split(",")
    ports = str(params.get("port", "") or "5432").split(",")
    if len(ports) < len(hosts):
        ports += [ports[-1]] * (len(hosts) - len(ports))
    return ",".join(f"{h or 'localhost'}:{p or '5432'}" for h, p in zip(hosts, ports, strict=False)) + \
        f"/{params.get('dbname', '')}"
