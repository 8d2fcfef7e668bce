"""psycopg 3 against asyncpg on the PostgreSQL backend's hottest statements (issue 11 §2: "measure asyncpg
against it in the bench and say why you chose"). ``python -m bench pgdriver`` (part of ``make bench``).

Both drivers run the server's own statements, on one durable PostgreSQL cluster (bench/pgcluster.py), from
one asyncio process with 16 concurrent tasks over a pool of 8 connections, as a server worker does:
- a lone read by id: ``read_batch.BATCH_SQL`` with one type and id (what an idle server sends per read);
- a batched read: the same statement with 16 ids (what a busy server sends);
- the staged read audit: ``read_audit.STAGE_SQL``, one 2 KB row (one per batch of secured reads).

For each: statements per second, and CPU µs per statement in this process (the driver, the pool and the
event loop: what the server pays) and in PostgreSQL's processes (from /proc). psycopg runs as the server
configures it: ``AsyncConnectionPool``, server-side prepared statements after the default threshold,
binary results off; asyncpg with its default statement cache (prepared at first use).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bench.bench_postgres import _stats, _tree
from bench.pgcluster import BenchCluster

TASKS = 16
POOL = 8
RESOURCES = 20_000


@dataclass
class Figure:
    driver: str
    case: str
    statements: int
    seconds: float
    client_us: float
    server_us: float

    @property
    def rate(self) -> float:
        return self.statements / self.seconds if self.seconds else 0.0


def _dollar(sql: str) -> str:
    """psycopg's ``%s`` placeholders as asyncpg's ``$n``."""
    out, n, i = [], 0, 0
    while (j := sql.find("%s", i)) >= 0:
        n += 1
        out += [sql[i:j], f"${n}"]
        i = j + 2
    return "".join([*out, sql[i:]])


def _postgres_pids(cluster: BenchCluster) -> set[int]:
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    return _tree(_stats(), {postmaster})


class Meter:
    """CPU seconds of this process and of PostgreSQL's processes between ``start`` and ``stop``, taken while
    the pool's connections (and so their backends) are open: per backend, what it used in between."""

    def __init__(self, cluster: BenchCluster) -> None:
        self.cluster = cluster
        self.client = self.server = 0.0
        self._before: dict[int, float] = {}
        self._me = 0.0

    def _postgres(self) -> dict[int, float]:
        stats = _stats()
        return {pid: stats[pid][1] for pid in _postgres_pids(self.cluster)}

    def start(self) -> None:
        self._before, self._me = self._postgres(), time.process_time()

    def stop(self) -> None:
        self.client = time.process_time() - self._me
        self.server = sum(cpu - self._before.get(pid, 0.0) for pid, cpu in self._postgres().items())


def _prepare(url: str) -> None:
    import psycopg

    from fhir_server.storage.postgres.schema import create_schema

    with psycopg.connect(url, autocommit=True) as conn:
        create_schema(conn, "bench")
        with conn.cursor() as cur, cur.copy("COPY resources (type, id, version, last_updated, deleted, data, "
                                            "patients, pkey) FROM STDIN") as copy:
            body = b'{"resourceType":"Observation","status":"final","code":{"text":"x"}}' * 12
            for n in range(RESOURCES):
                copy.write_row(("Observation", f"o{n}", 1, "2026-12-05T00:00:00.000Z", 0, body, f"p{n % 500}",
                                f"p{n % 500}"))
        conn.execute("ANALYZE")


Statement = tuple[str, Callable[[int], list[Any]]]


def _cases() -> dict[str, Statement]:
    from fhir_server.storage.postgres.read_audit import STAGE_SQL
    from fhir_server.storage.postgres.read_batch import BATCH_SQL

    lines = b'["R","k1",1764892800000000,"req","Observation","o1","1","p1"]\n' * 36  # ~2 KB
    return {
        "read by id, alone": (BATCH_SQL, lambda n: [["Observation"], [f"o{n % RESOURCES}"]]),
        "read by id, 16 batched": (BATCH_SQL, lambda n: [["Observation"] * 16,
                                                          [f"o{(n * 16 + k) % RESOURCES}" for k in range(16)]]),
        "read audit staged (2 KB)": (STAGE_SQL, lambda n: [36, lines]),
    }


async def _drive(run: Callable[[int], Awaitable[None]], count: int) -> float:
    counter = iter(range(count))

    async def task() -> None:
        for n in counter:
            await run(n)

    started = time.perf_counter()
    await asyncio.gather(*(task() for _ in range(TASKS)))
    return time.perf_counter() - started


async def _psycopg(url: str, sql: str, args: Callable[[int], list[Any]], count: int, meter: Meter) -> float:
    from psycopg_pool import AsyncConnectionPool

    async with AsyncConnectionPool(url, min_size=POOL, max_size=POOL, kwargs={"autocommit": True},
                                   open=False) as pool:
        await pool.wait()

        async def one(n: int) -> None:
            async with pool.connection() as conn:
                cur = await conn.execute(sql, args(n))
                if cur.description is not None:
                    await cur.fetchall()

        await _drive(one, 200)  # warm: connections made, statements prepared
        meter.start()
        seconds = await _drive(one, count)
        meter.stop()
        return seconds


async def _asyncpg(url: str, sql: str, args: Callable[[int], list[Any]], count: int, meter: Meter) -> float:
    import asyncpg

    query = _dollar(sql)
    pool = await asyncpg.create_pool(url, min_size=POOL, max_size=POOL)
    try:
        async def one(n: int) -> None:
            async with pool.acquire() as conn:
                await conn.fetch(query, *args(n))

        await _drive(one, 200)
        meter.start()
        seconds = await _drive(one, count)
        meter.stop()
        return seconds
    finally:
        await pool.close()


def measure(count: int) -> list[Figure]:
    try:
        import asyncpg  # noqa: F401
    except ImportError as error:
        raise SystemExit("asyncpg is not installed: pip install -e '.[test]' (the bench extra)") from error
    cluster = BenchCluster()
    figures: list[Figure] = []
    try:
        url = cluster.database("drivers")
        _prepare(url)
        for case, (sql, args) in _cases().items():
            for driver, run in (("psycopg 3", _psycopg), ("asyncpg", _asyncpg)):
                meter = Meter(cluster)
                seconds = asyncio.run(run(url, sql, args, count, meter))
                figures.append(Figure(driver, case, count, seconds, meter.client / count * 1e6,
                                      meter.server / count * 1e6))
    finally:
        cluster.stop()
    return figures


def main(argv: list[str] | None = None) -> None:
    """``argv`` None (``python -m bench``): the defaults."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_pgdriver", description="psycopg 3 against asyncpg")
    parser.add_argument("--statements", type=int, default=20_000, help="per driver and case")
    opts = parser.parse_args(argv or [])
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"psycopg 3 and asyncpg, {TASKS} tasks over a pool of {POOL}, {opts.statements:,} statements each; "
          f"load average {load}")
    print(f"  {'case':<26} {'driver':<10} {'statements/s':>13} {'µs client':>10} {'µs PostgreSQL':>14}")
    figures = measure(opts.statements)
    for f in figures:
        print(f"  {f.case:<26} {f.driver:<10} {f.rate:>13,.0f} {f.client_us:>10.0f} {f.server_us:>14.0f}")
    by = {(f.case, f.driver): f for f in figures}
    for case in dict.fromkeys(f.case for f in figures):
        p, a = by[(case, "psycopg 3")], by[(case, "asyncpg")]
        print(f"  {case}: asyncpg's client CPU {a.client_us / p.client_us:.2f}x psycopg's, "
              f"PostgreSQL's {a.server_us / p.server_us if p.server_us else 0:.2f}x")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
