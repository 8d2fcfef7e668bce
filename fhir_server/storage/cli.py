"""``kzfhir db init|upgrade`` and ``kzfhir migrate``: registered by ``fhir_server.cli`` via ``register``.

    kzfhir db init    [--database URL-or-file]   create the schema in an empty database
    kzfhir db upgrade [--database URL-or-file]   bring the schema to this release's version
    kzfhir db archive --before 2026-06 [--database URL]   detach history and audit months before June 2026
    kzfhir migrate --from data/kzfhir.sqlite --to postgresql://kzfhir@db/kzfhir

A server creates or upgrades its schema at start too; ``db init`` / ``db upgrade`` let a deployment do
it beforehand, as a database owner, and run the servers as a user without CREATE rights
(docs/postgres.md). ``migrate`` copies a SQLite store into an empty PostgreSQL database
(storage/postgres/migrate.py) and then verifies the audit chain there against the source's head.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from fhir_server.cli_errors import fail


def _database(args: argparse.Namespace) -> str:
    from fhir_server.config import Settings

    return str(args.database) if args.database else str(Settings().database)


def _db(args: argparse.Namespace) -> int:
    from fhir_server.backends import AUDIT_RULES, is_postgres

    database = _database(args)
    if not is_postgres(database):
        # SQLite creates its tables idempotently at every open; there is no version to record
        from fhir_server.backends import sqlite_store

        if args.db_command == "upgrade" and not Path(database).exists():
            return fail("kzfhir db", f"{database} does not exist")

        async def touch() -> None:
            store = sqlite_store(database)
            await store.open()
            await store.close()

        asyncio.run(touch())
        print(f"SQLite store {database}: schema ready")
        return 0

    import psycopg

    from fhir_server.storage.postgres.schema import SchemaTooNew, create_schema, schema_version

    try:
        with psycopg.connect(database, autocommit=True) as conn:
            if args.db_command == "init" and schema_version(conn) > 0:
                return fail("kzfhir db init", "the database already holds a kzfhir schema (use `kzfhir db upgrade`)")
            before, after = create_schema(conn, AUDIT_RULES.genesis)
    except SchemaTooNew as exc:
        return fail(f"kzfhir db {args.db_command}", str(exc))
    except psycopg.Error as exc:
        return fail(f"kzfhir db {args.db_command}", f"PostgreSQL: {exc}".strip())
    print(f"kzfhir schema version {after}" + ("" if before == after else f" (was {before or 'none'})"))
    return 0


class _Bar:
    """A progress bar per table on stderr (one line, rewritten)."""

    def __init__(self) -> None:
        self._table = ""

    def __call__(self, table: str, done: int, total: int) -> None:
        if table != self._table and self._table:
            sys.stderr.write("\n")
        self._table = table
        width = 30
        filled = width if total == 0 else width * done // total
        sys.stderr.write(f"\r{table:<22} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        sys.stderr.flush()

    def close(self) -> None:
        if self._table:
            sys.stderr.write("\n")


def _migrate(args: argparse.Namespace) -> int:
    from fhir_server.backends import AUDIT_RULES, is_postgres, postgres_store, verify_sqlite_file

    source, target = str(args.source), str(args.target)
    if not Path(source).is_file():
        return fail("kzfhir migrate", f"--from {source}: no such SQLite file")
    if not is_postgres(target):
        return fail("kzfhir migrate", "--to must be a postgresql:// URL")
    report, pending = verify_sqlite_file(source)
    if pending:
        return fail("kzfhir migrate", f"{pending} read-audit journal lines beside {source} are not chained yet: "
                                      "start the server on it once and stop it, then migrate")
    if not report.ok:
        return fail("kzfhir migrate", f"the source's audit chain is broken at seq {report.first_broken_seq}: "
                                      f"{report.problem}")

    import sqlite3

    import psycopg

    from fhir_server.storage.postgres.migrate import MigrationRefused, copy_store

    async def prepare() -> None:  # the schema, as a server would create it
        store = postgres_store(target, pool_size=1)
        await store.open()
        await store.close()

    bar = _Bar()
    try:
        asyncio.run(prepare())
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, isolation_level=None)
        try:
            with psycopg.connect(target) as dst:
                counts = copy_store(src, dst, AUDIT_RULES, None if args.quiet else bar)
        finally:
            src.close()
            bar.close()
    except MigrationRefused as exc:
        return fail("kzfhir migrate", str(exc))
    except psycopg.Error as exc:
        return fail("kzfhir migrate", f"PostgreSQL: {exc}".strip())

    copied = asyncio.run(_verify(target))
    if not copied.ok or (copied.head_seq, copied.head_hash) != (report.head_seq, report.head_hash):
        return fail("kzfhir migrate", f"the copied audit chain does not verify: {copied.problem or 'head differs'}")
    print(f"migrated {counts['resources']} resources, {counts['history']} versions, {counts['audit_chain']} "
          f"audit chain rows; chain verified on PostgreSQL: head seq {copied.head_seq} hash {copied.head_hash} "
          "(the source's)")
    return 0


def _archive(args: argparse.Namespace) -> int:
    from fhir_server.backends import AUDIT_RULES, is_postgres

    database = _database(args)
    if not is_postgres(database):
        return fail("kzfhir db archive", "only a PostgreSQL store is partitioned by month (docs/postgres.md)")
    import psycopg

    from fhir_server.storage.postgres.audit import archive_partitions, parse_month
    from fhir_server.storage.postgres.schema import ArchiveRefused

    try:
        before = parse_month(args.before)
    except ValueError:
        return fail("kzfhir db archive", f"--before takes a month as YYYY-MM, not {args.before!r}")
    try:
        with psycopg.connect(database, autocommit=True) as conn:
            detached = archive_partitions(conn, AUDIT_RULES, before)
    except ArchiveRefused as exc:
        return fail("kzfhir db archive", str(exc))
    except psycopg.Error as exc:
        return fail("kzfhir db archive", f"PostgreSQL: {exc}".strip())
    if not detached:
        print(f"nothing to archive before {args.before}")
    for name in detached:
        print(f"detached {name}: dump it (pg_dump -t {name}) to the archive, then DROP TABLE {name}")
    return 0


async def _verify(target: str) -> Any:
    from fhir_server.backends import postgres_store

    store = postgres_store(target, pool_size=1)
    await store.open()
    try:
        return await store.audit.verify()
    finally:
        await store.close()


def register(subparsers: Any) -> None:
    """Add ``db`` (with ``init`` and ``upgrade``) and ``migrate`` to the ``kzfhir`` argument parser."""
    db = subparsers.add_parser("db", help="database schema: init, upgrade, archive")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    for name, text in (("init", "create the kzfhir schema in an empty database"),
                       ("upgrade", "bring the database's schema to this release's version")):
        command = db_sub.add_parser(name, help=text)
        command.add_argument("--database", help="a SQLite file or a postgresql:// URL (default $KZFHIR_DATABASE)")
        command.set_defaults(func=_db)
    archive = db_sub.add_parser("archive", help="detach the history and audit partitions of months before --before")
    archive.add_argument("--before", required=True, help="the first month kept attached, YYYY-MM")
    archive.add_argument("--database", help="a postgresql:// URL (default $KZFHIR_DATABASE)")
    archive.set_defaults(func=_archive)
    migrate = subparsers.add_parser("migrate", help="copy a SQLite store into an empty PostgreSQL database")
    migrate.add_argument("--from", dest="source", required=True, help="the SQLite store file (no server on it)")
    migrate.add_argument("--to", dest="target", required=True, help="postgresql://user@host:port/db (empty)")
    migrate.add_argument("--quiet", action="store_true", help="no progress bar")
    migrate.set_defaults(func=_migrate)
