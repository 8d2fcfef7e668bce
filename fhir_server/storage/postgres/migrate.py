"""Copy a SQLite store into an empty PostgreSQL database (``kzfhir migrate``, issue 11 §5).

Every table of the SQLite store goes over as it is — resources, history, the search index rows,
outbox, jobs, kv, and the audit trail (``audit_chain`` rows with their hashes, ``audit_patient_blocks``)
— in one PostgreSQL transaction (all or nothing), with ``COPY``. The search index rows are copied
rather than recomputed, so the copy answers searches exactly as the source did. What PostgreSQL adds is
filled in: the patient compartment key ``pkey`` (schema.py) from ``patients``, and ``store_head`` (the
last instant, the next history seq and row id). The ``audit_chain_extend_only`` trigger checks every
copied chain row against the one before it; after the copy the caller verifies the whole chain and
compares its head with the source's (cli: ``kzfhir migrate``). ``history`` and ``audit_chain`` are
partitioned by month (schema.py): the months the source covers get their partitions before the copy,
and each chain row's ``at`` (its partition key, the instant it was chained) is the latest ``recorded``
up to it, so it increases with ``seq`` as on a store that was PostgreSQL from the start.

The source must be at rest: no server running on it, and no read-audit journal lines waiting to be
chained (start and stop the server once to chain them).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import Any

import psycopg

from fhir_server.storage.audit import ChainRules
from fhir_server.storage.postgres.conn import QmarkConnection
from fhir_server.storage.postgres.schema import ensure_partitions, month_of
from fhir_server.storage.sqlite.audit.index import index_blocks, index_mark, unindexed_blocks
from fhir_server.storage.sqlite.search.ddl import TABLES

#: tables in copy order; store_head and kzfhir_schema are PostgreSQL's own
COPIED = ("resources", "history", *TABLES, "outbox", "jobs", "kv", "audit_chain", "audit_patient_blocks")
_BATCH = 5000

Progress = Callable[[str, int, int], None]  # (table, rows copied, rows in the table)


class MigrationRefused(RuntimeError):
    """The target is not empty, or the source is not a kzfhir store at rest."""


def _columns_sqlite(src: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in src.execute(f"PRAGMA table_info({table})")]


def _columns_pg(dst: psycopg.Connection[Any], table: str) -> list[str]:
    rows = dst.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                       "AND table_schema = current_schema() ORDER BY ordinal_position", [table]).fetchall()
    return [str(r[0]) for r in rows]


def check_target_empty(dst: psycopg.Connection[Any]) -> None:
    for table in ("resources", "audit_chain", "outbox", "jobs"):
        if dst.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone() != (False,):
            raise MigrationRefused(f"the target database is not empty ({table} has rows): migrate into a database "
                                   "that `kzfhir db init` created and no server has started on")


def copy_store(src: sqlite3.Connection, dst: psycopg.Connection[Any], rules: ChainRules,
               progress: Progress | None = None) -> dict[str, int]:
    """Copy every table of ``src`` (a SQLite store, read in one snapshot) into ``dst`` (a PostgreSQL
    database holding the kzfhir schema and nothing else), in one transaction. Returns rows per table."""
    counts: dict[str, int] = {}
    src.execute("BEGIN")  # one read snapshot of the source
    try:
        with dst.transaction():
            check_target_empty(dst)
            _partitions_for(src, dst)
            for table in COPIED:
                counts[table] = _copy_table(src, dst, table, progress)
            _fill_in(dst)
            _index_read_blocks(dst, rules)
    finally:
        src.execute("ROLLBACK")
    # Statistics for the planner now, not when autovacuum next looks: a search planned on the empty tables'
    # figures can cost ten times its time (docs/performance.md, "A quiet run"); PostgreSQL's own advice after a
    # bulk load (https://www.postgresql.org/docs/15/populate.html#POPULATE-ANALYZE).
    dst.execute("ANALYZE")
    return counts


def _copy_table(src: sqlite3.Connection, dst: psycopg.Connection[Any], table: str,
                progress: Progress | None) -> int:
    source = _columns_sqlite(src, table)
    if not source:
        return 0  # an older store without this table
    target = set(_columns_pg(dst, table))
    columns = [c for c in source if c in target]
    total = int(src.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    names = ", ".join(columns)
    chain = table == "audit_chain"
    order = " ORDER BY seq" if chain else ""  # the trigger wants the chain in order
    at = columns.index("recorded") if chain else -1
    latest: datetime | None = None
    done = 0
    with dst.cursor().copy(f"COPY {table} ({names}{', at' if chain else ''}) FROM STDIN") as copy:
        cursor = src.execute(f"SELECT {names} FROM {table}{order}")
        while rows := cursor.fetchmany(_BATCH):
            for row in rows:
                if chain:
                    moment = _instant(str(row[at]))
                    latest = moment if latest is None or moment > latest else latest
                    row = (*row, latest)
                copy.write_row(row)
            done += len(rows)
            if progress is not None:
                progress(table, done, total)
    if progress is not None and total == 0:
        progress(table, 0, 0)
    return done


def _instant(recorded: str) -> datetime:
    """A chain row's ``recorded`` (an R4 instant, UTC or with an offset) as a timestamp."""
    return datetime.fromisoformat(recorded.replace("Z", "+00:00"))


def _partitions_for(src: sqlite3.Connection, dst: psycopg.Connection[Any]) -> None:
    """The monthly partitions of the months the source's history and chain cover (the current month and
    those ahead exist already): rows outside them would land in the DEFAULT partition."""
    spans = [src.execute(f"SELECT min({column}), max({column}) FROM {table}").fetchone()
             for table, column in (("history", "last_updated"), ("audit_chain", "recorded"))
             if _columns_sqlite(src, table)]
    stamps = [_instant(str(value)) for span in spans if span is not None and span[0] is not None for value in span]
    if stamps:
        ensure_partitions(dst, month_of(min(stamps)), month_of(max(stamps)))


def _fill_in(dst: psycopg.Connection[Any]) -> None:
    """What PostgreSQL keeps and SQLite does not: compartment keys, the store head, identity sequences."""
    for table in ("resources", "history"):
        dst.execute(f"UPDATE {table} SET pkey = split_part(patients, ' ', 1) WHERE patients IS NOT NULL "
                    "AND patients <> ''")
    for table in TABLES:
        dst.execute(f"UPDATE {table} t SET pkey = r.pkey FROM resources r WHERE r.rid = t.rid AND r.pkey <> ''")
    dst.execute("""UPDATE store_head SET
        next_seq = (SELECT COALESCE(max(seq), 0) + 1 FROM history),
        next_rid = (SELECT COALESCE(max(rid), 0) + 1 FROM resources),
        last_micros = COALESCE((SELECT (extract(epoch FROM max(last_updated)::timestamptz) * 1000000)::bigint
                                FROM history), 0)
        WHERE id = 1""")
    for table in ("resources", "outbox"):  # GENERATED BY DEFAULT AS IDENTITY: past the copied ids
        dst.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{'rid' if table == 'resources' else 'id'}'), "
                    f"GREATEST((SELECT max({'rid' if table == 'resources' else 'id'}) FROM {table}), 1))")


def _index_read_blocks(dst: psycopg.Connection[Any], rules: ChainRules) -> None:
    """SQLite indexes read blocks by patient in rounds, so its index may trail the chain; PostgreSQL
    indexes each block in the unit that appends it (audit.py) and moves the mark to it. Index the copied
    blocks above the source's mark now, or the next block's mark would pass over them unindexed."""
    conn = QmarkConnection(dst)
    blocks = unindexed_blocks(conn, rules, index_mark(conn))  # type: ignore[arg-type]  # sqlite3-shaped
    if blocks:
        index_blocks(conn, blocks, max(blocks))  # type: ignore[arg-type]
