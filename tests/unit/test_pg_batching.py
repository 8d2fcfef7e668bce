"""The PostgreSQL backend's two per-process batchers, without a database: the read-audit group commit
(storage/postgres/read_audit.py, ``ReadStager``) and the batched reads by id (read_batch.py, ``ReadBatcher``).
What they promise: a caller returns only after the batch holding its work went out and succeeded; what
arrives while one batch is in flight goes in the next; a failed batch fails every caller in it and no other;
a caller that gives up does not take the batch, or the others in it, with it."""

from __future__ import annotations

import asyncio

import pytest

from fhir_server.storage.postgres.read_audit import ReadStager
from fhir_server.storage.postgres.read_batch import ReadBatcher, Row


class Down(Exception):
    pass


@pytest.mark.req("AC-14")
async def test_staged_lines_return_after_their_batch_and_group_while_one_is_in_flight() -> None:
    batches: list[bytes] = []
    release = asyncio.Event()

    async def insert(reads: int, data: bytes) -> None:
        batches.append(data)
        if len(batches) == 1:
            await release.wait()  # the first batch is slow: the next reads gather meanwhile

    stager = ReadStager(insert)
    first = asyncio.create_task(stager.stage(b"a\n"))
    await asyncio.sleep(0)
    later = [asyncio.create_task(stager.stage(f"{n}\n".encode())) for n in range(5)]
    await asyncio.sleep(0.01)
    assert not first.done() and not any(t.done() for t in later)  # nobody answered before their commit
    release.set()
    await asyncio.gather(first, *later)
    assert batches == [b"a\n", b"0\n1\n2\n3\n4\n"]  # two round trips for six reads
    assert (stager.reads, stager.batches) == (6, 2)


@pytest.mark.req("AC-14")
async def test_a_failed_staging_fails_its_reads_only_and_a_cancelled_one_leaves_the_batch() -> None:
    calls: list[bytes] = []
    release = asyncio.Event()

    async def insert(reads: int, data: bytes) -> None:
        calls.append(data)
        if len(calls) == 1:
            await release.wait()
            raise Down("database away")

    stager = ReadStager(insert)
    doomed = [asyncio.create_task(stager.stage(b"x\n")) for _ in range(2)]
    await asyncio.sleep(0)
    survivor = asyncio.create_task(stager.stage(b"y\n"))
    impatient = asyncio.create_task(stager.stage(b"z\n"))
    await asyncio.sleep(0)
    impatient.cancel()  # its client hung up: the batch (and the survivor in it) still goes
    release.set()
    results = await asyncio.gather(*doomed, return_exceptions=True)
    assert all(isinstance(r, Down) for r in results)  # refused: no read answered unaudited
    await survivor
    assert calls == [b"x\nx\n", b"y\nz\n"]
    await stager.drain()


async def test_reads_by_id_are_batched_while_one_lookup_is_in_flight() -> None:
    statements: list[list[tuple[str, str]]] = []
    counters: list[int] = []
    release = asyncio.Event()

    async def fetch(types: list[str], ids: list[str]) -> list[Row]:
        statements.append(list(zip(types, ids, strict=True)))
        if len(statements) == 1:
            await release.wait()
        # (changes, n, version, ...) per asked key; "gone" has no row (LEFT JOIN: nulls)
        return [(7, n, None if i == "gone" else 1, "t", 0, f"{t}/{i}".encode(), "")
                for n, (t, i) in enumerate(zip(types, ids, strict=True), start=1)]

    batcher = ReadBatcher(fetch, counters.append)
    lone = asyncio.create_task(batcher.read("Patient", "p1"))
    await asyncio.sleep(0)
    more = [asyncio.create_task(batcher.read("Observation", i)) for i in ("o1", "gone", "o1")]
    await asyncio.sleep(0.01)
    assert not lone.done()
    release.set()
    first, *rest = await asyncio.gather(lone, *more)
    assert first is not None and first[3] == b"Patient/p1"
    assert [r[3] if r else None for r in rest] == [b"Observation/o1", None, b"Observation/o1"]
    assert statements == [[("Patient", "p1")], [("Observation", "o1"), ("Observation", "gone"), ("Observation", "o1")]]
    assert counters == [7, 7]  # the change counter acted on once per statement, before its reads are answered


async def test_a_failed_lookup_fails_its_batch_only() -> None:
    calls = 0

    async def fetch(types: list[str], ids: list[str]) -> list[Row]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise Down("database away")
        return [(1, 1, 2, "t", 0, b"{}", "")]

    batcher = ReadBatcher(fetch, lambda _: None)
    with pytest.raises(Down):
        await batcher.read("Patient", "p1")
    again = await batcher.read("Patient", "p1")
    assert again is not None and again[0] == 2
