"""Where storage meets security: the store backends, composed with the audit trail's rules.

``storage/`` implements the audit seam (storage/audit.py) without knowing its rules, and
``security/audit/`` holds the rules (hash links, canonical bytes, read blocks, notices) without any
SQL; this module, the composition root, hands the one to the other. Everything that builds a store
builds it here: the app (``api/app.py``), ``kzfhir audit verify`` and the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from fhir_server.config import Settings
from fhir_server.search.query import SearchQuery
from fhir_server.security.audit.rules import CHAIN_RULES
from fhir_server.storage.audit import ChainReport, ChainRules
from fhir_server.storage.protocols import Store
from fhir_server.storage.sqlite.audit.journal import unchained_lines
from fhir_server.storage.sqlite.audit.verify import verify_database
from fhir_server.storage.sqlite.search.one import resource_matches
from fhir_server.storage.sqlite.store import SqliteStore

#: The rules every backend keeps the audit trail by (security/audit/rules.py).
AUDIT_RULES: ChainRules = CHAIN_RULES


def sqlite_store(path: Path | str, *, synchronous_full: bool = True, max_batch: int = 256,
                 read_threads: int = 4) -> SqliteStore:
    """The embedded SQLite store of one database file."""
    return SqliteStore(path, rules=AUDIT_RULES, synchronous_full=synchronous_full, max_batch=max_batch,
                       read_threads=read_threads)


def postgres_store(url: str, *, pool_size: int = 8, statement_timeout_ms: int = 0, pool_timeout: float = 30.0,
                   replicas: Iterable[str] = (), replica_max_lag_seconds: float = 30.0,
                   transaction_pooling: bool = False, listen_url: str = "") -> Store:
    """The PostgreSQL store of one database (a ``postgresql://`` URL, several hosts allowed; docs/postgres.md),
    with its hot standbys (``replicas``) to read from. psycopg is imported here, so a SQLite deployment never
    loads it."""
    from fhir_server.storage.postgres.store import PostgresStore

    return PostgresStore(url, rules=AUDIT_RULES, pool_size=pool_size, statement_timeout_ms=statement_timeout_ms,
                         pool_timeout_seconds=pool_timeout, replicas=list(replicas),
                         replica_max_lag_seconds=replica_max_lag_seconds, transaction_pooling=transaction_pooling,
                         listen_url=listen_url)


def resource_matcher() -> Callable[[SearchQuery, dict[str, Any]], bool]:
    """The search engine's "does this resource match this query" for the access policy (SMART granular
    scopes, security/policy/granular.py): the planner's SQL over the resource's index rows, whichever
    backend stores the data (the PostgreSQL backend runs the same planner)."""
    return resource_matches


def watch_changes(store: Store, types: Iterable[str], callback: Callable[[], None]) -> None:
    """Run ``callback`` when a write of one of ``types`` commits in another server process: on PostgreSQL
    every node of the database (storage/postgres/changes.py). A SQLite store has one process, whose own
    commits run their ``on_commit`` callbacks: nothing to watch."""
    watch = getattr(store, "watch_changes", None)
    if watch is not None:
        watch(types, callback)


def is_postgres(database: Path | str) -> bool:
    """Does ``database`` (``settings.database``) name a PostgreSQL database rather than a SQLite file?"""
    return isinstance(database, str) and database.startswith(POSTGRES_SCHEMES)


POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def store_for(settings: Settings) -> Store:
    """The store the settings name: ``settings.database`` is a SQLite file, or a ``postgresql://`` URL."""
    if is_postgres(settings.database):
        return postgres_store(str(settings.database), pool_size=settings.database_pool_size,
                              statement_timeout_ms=settings.statement_timeout_ms,
                              pool_timeout=settings.database_pool_timeout,
                              replicas=settings.database_replicas.split(),
                              replica_max_lag_seconds=settings.replica_max_lag_seconds,
                              transaction_pooling=settings.database_transaction_pooling,
                              listen_url=settings.database_listen_url)
    return sqlite_store(settings.database, synchronous_full=settings.synchronous_full,
                        max_batch=settings.group_commit_max_batch, read_threads=settings.read_connections)


def verify_postgres_database(url: str, anchors: Mapping[int, str] | None = None) -> tuple[ChainReport, int]:
    """``kzfhir audit verify`` on PostgreSQL: the chain verified in one read-only REPEATABLE READ snapshot (no
    server needed, nothing written), and how many staged reads wait in ``read_audit`` to be chained (a running
    server chains them within a second; storage/postgres/read_audit.py). ConnectionError: out of reach."""
    import psycopg

    from fhir_server.storage.postgres.audit import verify_connection
    from fhir_server.storage.postgres.conn import QmarkConnection, connect_kwargs, reason_of

    try:
        with psycopg.connect(url, **connect_kwargs(url, 0)) as raw, raw.transaction():
            raw.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            report = verify_connection(QmarkConnection(raw), AUDIT_RULES, anchors)
            staged = raw.execute("SELECT to_regclass('read_audit') IS NOT NULL").fetchone()
            row = raw.execute("SELECT coalesce(sum(reads), 0) FROM read_audit").fetchone() if staged and staged[0] \
                else None
    except psycopg.Error as exc:  # the CLI's one line; the security package never sees a driver's error
        raise ConnectionError(reason_of(exc)) from None
    return report, int(row[0]) if row else 0


def verify_sqlite_file(database: str, anchors: Mapping[int, str] | None = None) -> tuple[ChainReport, int]:
    """``kzfhir audit verify``: the report of a SQLite database file's audit trail, opened read-only (no
    server needed), and how many read-audit journal lines beside it wait to be chained."""
    return verify_database(database, AUDIT_RULES, anchors), unchained_lines(database)
