"""The Store contract (storage/protocols.py), written against the protocols and run for every backend:
reads by id and version, history and its paging, search (sort, paging, totals) and include rounds, the
outbox and jobs, atomic units (a unit that raises leaves nothing; callbacks only after commit), version
conflicts, and the serializability units are written against (architecture.md, As built: "a unit is
serializable by construction"): concurrent conditional creates have one winner and concurrent updates of
one resource never share a version number — on PostgreSQL also across two stores on one database, as
two server processes would be (issue 11 §3).

A backend joins by adding a ``Backend`` to ``BACKENDS``: how to build a store, and whether a second
store may open the same database (SQLite: one process per file).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from fhir_server.backends import postgres_store, sqlite_store
from fhir_server.search import get_indexer, parse_search
from fhir_server.search.query import IncludeSpec
from fhir_server.storage.protocols import HistoryQuery, Store, StoreError, TxView
from tests.pg import PgBouncer, fresh_database, release_database


@dataclass(frozen=True)
class Backend:
    name: str
    location: Callable[[Path], str]  # a new, empty database
    build: Callable[[str], Store]  # a store on it (called twice for ``shared``)
    shared: bool  # may two stores (two processes) serve one database?


BACKENDS = [
    Backend("sqlite", lambda folder: str(folder / "store.sqlite"),
            lambda where: sqlite_store(where, synchronous_full=False), shared=False),
    Backend("postgres", lambda folder: fresh_database("store"), lambda where: postgres_store(where, pool_size=4),
            shared=True),
    # issue 11 §4: the same store behind pgbouncer in transaction mode (docs/deployment.md, pgbouncer)
    Backend("pgbouncer", lambda folder: PgBouncer.get().url(fresh_database("store")),
            lambda where: postgres_store(where, pool_size=4, transaction_pooling=True), shared=True),
]


@pytest.fixture(params=BACKENDS, ids=[b.name for b in BACKENDS])
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    return chosen


@pytest.fixture
def location(backend: Backend, tmp_path: Path) -> Iterator[str]:
    where = backend.location(tmp_path)
    yield where
    release_database(where)


@pytest.fixture
async def store(backend: Backend, location: str) -> AsyncIterator[Store]:
    opened = backend.build(location)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def patient(pid: str, family: str, iin: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": family}],
            "identifier": [{"system": "https://fhir.kzfhir.kz/sid/iin", "value": iin}]}


def observation(oid: str, pid: str, code: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final", "subject": {"reference": f"Patient/{pid}"},
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]}}


def put_unit(resource: dict[str, Any], version: int = 1, patients: str | None = None
             ) -> Callable[[TxView], Any]:
    def unit(view: TxView) -> Any:
        data = orjson.dumps({**resource, "meta": {"versionId": str(version), "lastUpdated": view.timestamp}})
        owner = patients if patients is not None else (resource["id"] if resource["resourceType"] == "Patient"
                                                       else resource["subject"]["reference"].split("/")[1])
        return view.put(resource["resourceType"], resource["id"], version, data,
                        get_indexer().extract(orjson.loads(data)), "PUT" if version > 1 else "POST", owner)

    return unit


async def put(store: Store, resource: dict[str, Any], version: int = 1) -> Any:
    return await store.transaction(put_unit(resource, version))


def query(resource_type: str, *params: tuple[str, str]) -> Any:
    return parse_search(resource_type, list(params), strict=True)


class Refused(Exception):
    pass


async def test_read_vread_and_delete(store: Store) -> None:
    first = await put(store, patient("p1", "Ахметов", "850315300019"))
    second = await put(store, patient("p1", "Ахметова", "850315300019"), 2)
    assert first.version == 1 and second.version == 2 and second.last_updated > first.last_updated
    current = await store.read("Patient", "p1")
    assert current is not None and current.version == 2 and not current.deleted and current.patients == "p1"
    assert orjson.loads(current.data or b"{}")["name"][0]["family"] == "Ахметова"
    old = await store.vread("Patient", "p1", 1)
    assert old is not None and old.method == "POST"
    assert orjson.loads(old.data or b"{}")["name"][0]["family"] == "Ахметов"
    assert await store.vread("Patient", "p1", 9) is None and await store.read("Patient", "nobody") is None
    gone = await store.transaction(lambda view: view.delete("Patient", "p1", 3, "DELETE"))
    assert gone.deleted and gone.version == 3
    after = await store.read("Patient", "p1")
    assert after is not None and after.deleted and after.data is None
    assert (await store.search(query("Patient", ("family", "Ахметова")))).matches == ()


async def test_the_same_statements_many_times_from_concurrent_clients(store: Store) -> None:
    """Repeated statements are what a driver prepares (psycopg: from the 5th run on a connection); behind a
    transaction pooler the next run lands on another server connection, where no such statement exists."""
    await put(store, patient("p1", "Сериков", "900101300011"))

    async def client(n: int) -> None:
        for version in range(n, n + 24, 2):
            await put(store, observation(f"o{version}", "p1", "8867-4"))
            assert (await store.read("Patient", "p1")) is not None
            assert len((await store.search(query("Observation", ("patient", "Patient/p1")))).matches) >= 1

    await asyncio.gather(client(0), client(1))
    found = await store.search(query("Observation", ("patient", "Patient/p1"), ("_count", "100")))
    assert len(found.matches) == 24


async def test_a_unit_sees_its_own_writes_and_a_wrong_version_is_a_conflict(store: Store) -> None:
    def unit(view: TxView) -> tuple[Any, ...]:
        put_unit(patient("p1", "Иванов", "1"))(view)
        current = view.current("Patient", "p1")
        found = view.search_ids(query("Patient", ("identifier", "https://fhir.kzfhir.kz/sid/iin|1")), 10)
        return current.version if current else None, found, view.patients("Patient", "p1"), view.version("Patient",
                                                                                                         "p1", 1)

    version, found, patients, stored = await store.transaction(unit)
    assert version == 1 and found == [("Patient", "p1")] and patients == "p1" and stored is not None
    with pytest.raises(StoreError) as refused:
        await put(store, patient("p1", "Иванов", "1"), 3)
    assert refused.value.category == "conflict"


async def test_a_unit_that_raises_leaves_nothing_and_calls_back_only_after_commit(store: Store) -> None:
    called: list[str] = []

    def failing(view: TxView) -> None:
        put_unit(patient("p1", "Иванов", "1"))(view)
        view.enqueue("notification", "Patient/p1", "k1", b"{}")
        view.put_job("j1", "export", "running", b"{}")
        view.on_commit(lambda: called.append("failed"))
        raise Refused

    with pytest.raises(Refused):
        await store.transaction(failing)
    assert await store.read("Patient", "p1") is None
    assert (await store.history(HistoryQuery())).entries == []
    assert await store.outbox_partition("notification", "Patient/p1", 10) == []
    assert await store.get_job("j1") is None
    assert called == []

    def committing(view: TxView) -> None:
        put_unit(patient("p1", "Иванов", "1"))(view)
        view.on_commit(lambda: called.append("committed"))

    await store.transaction(committing)
    assert called == ["committed"]
    assert (await store.read("Patient", "p1")) is not None


async def test_history_pages_by_sequence_at_every_level(store: Store) -> None:
    await put(store, patient("p1", "A", "1"))
    await put(store, patient("p2", "B", "2"))
    await put(store, patient("p1", "C", "1"), 2)
    await put(store, observation("o1", "p1", "1234-5"))
    everything = await store.history(HistoryQuery(count=10))
    assert [(e.type, e.id, e.version) for e in everything.entries] == [
        ("Observation", "o1", 1), ("Patient", "p1", 2), ("Patient", "p2", 1), ("Patient", "p1", 1)]
    assert everything.total == 4 and everything.next_cursor is None
    assert everything.seqs == sorted(everything.seqs, reverse=True)
    of_type = await store.history(HistoryQuery(type="Patient", count=2))
    assert [(e.id, e.version) for e in of_type.entries] == [("p1", 2), ("p2", 1)] and of_type.total == 3
    assert of_type.next_cursor is not None
    rest = await store.history(HistoryQuery(type="Patient", count=2, before_seq=of_type.next_cursor))
    assert [(e.id, e.version) for e in rest.entries] == [("p1", 1)] and rest.previous_cursor is not None
    back = await store.history(HistoryQuery(type="Patient", count=2, after_seq=rest.previous_cursor))
    assert [(e.id, e.version) for e in back.entries] == [("p1", 2), ("p2", 1)]
    instance = await store.history(HistoryQuery(type="Patient", id="p1"))
    assert [e.version for e in instance.entries] == [2, 1]
    since = await store.history(HistoryQuery(since=everything.entries[1].last_updated))
    assert [e.id for e in since.entries] == ["o1", "p1"]


async def test_search_sorts_pages_counts_and_includes(store: Store) -> None:
    for n, family in enumerate(["Сейткали", "Ахметов", "Бекова", "Ахметжанов"], start=1):
        await put(store, patient(f"p{n}", family, f"{n:012d}"))
        await put(store, observation(f"o{n}", f"p{n}", "8867-4" if n % 2 else "1234-5"))
    found = await store.search(query("Patient", ("family", "ахмет"), ("_sort", "family")))
    assert [m.resource_id for m in found.matches] == ["p4", "p2"] and found.total == 2
    assert (await store.search(query("Patient", ("identifier", "https://fhir.kzfhir.kz/sid/iin|000000000003")))
            ).matches[0].resource_id == "p3"
    page = await store.search(query("Patient", ("_sort", "-family"), ("_count", "3")))
    assert [m.resource_id for m in page.matches] == ["p1", "p3", "p2"] and page.next_cursor is not None
    assert page.total == 4
    rest = await store.search(query("Patient", ("_sort", "-family"), ("_count", "3"), ("_cursor", page.next_cursor)))
    assert [m.resource_id for m in rest.matches] == ["p4"] and rest.next_cursor is None
    observations = await store.search(query("Observation", ("code", "http://loinc.org|8867-4"),
                                            ("subject:Patient.family", "Сейт")))
    assert [m.resource_id for m in observations.matches] == ["o1"]
    assert [m.resource_id for m in (await store.search(query("Patient", ("_has:Observation:subject:code", "1234-5"),
                                                             ("_sort", "_id")))).matches] == ["p2", "p4"]
    counted = await store.search(query("Observation", ("_summary", "count")))
    assert counted.total == 4 and counted.matches == ()
    forward = await store.include([IncludeSpec("Observation", "subject", None, False, False)],
                                  list(observations.matches), 10)
    assert [(m.resource_type, m.resource_id, m.mode) for m in forward] == [("Patient", "p1", "include")]
    reverse = await store.include([IncludeSpec("Observation", "subject", None, False, True)],
                                  list(found.matches), 10)
    assert sorted(m.resource_id for m in reverse) == ["o2", "o4"]
    assert len(await store.include([IncludeSpec("Observation", "subject", None, False, True)],
                                   list(found.matches), 1)) == 1
    assert sorted(await store.search_ids(query("Observation", ("subject", "Patient/p3")), 10)) == [
        ("Observation", "o3")]


async def test_outbox_is_idempotent_due_in_order_and_settled(store: Store) -> None:
    def enqueue(view: TxView) -> str:
        view.enqueue("notification", "Patient/p1", "k1", b'{"n":1}')
        view.enqueue("notification", "Patient/p1", "k1", b'{"n":"again"}')  # same key: queued once
        view.enqueue("notification", "Patient/p1", "k2", b'{"n":2}')
        view.enqueue("notification", "Patient/p2", "k3", b'{"n":3}')
        return view.timestamp

    stamp = await store.transaction(enqueue)
    due = await store.outbox_due("notification", stamp, 10)
    assert [i.key for i in due] == ["k1", "k2", "k3"] and due[0].payload == b'{"n":1}' and due[0].status == "pending"
    assert await store.outbox_due("notification", "2000-01-01T00:00:00.000000Z", 10) == []
    mine = await store.outbox_partition("notification", "Patient/p1", 10)
    assert [i.key for i in mine] == ["k2", "k1"]
    assert [i.key for i in await store.outbox_partition("notification", "Patient/p1", 10, mine[0].id)] == ["k1"]
    await store.transaction(lambda view: view.settle_outbox([due[0].id], "delivered", None, None))
    await store.transaction(lambda view: view.settle_outbox([due[1].id], "retry", "timeout", "2999-01-01T00:00:00Z"))
    await store.transaction(lambda view: view.settle_outbox([due[2].id], "dead", "gone", None))
    assert await store.outbox_due("notification", "2998-01-01T00:00:00Z", 10) == []
    again = await store.outbox_due("notification", "2999-06-01T00:00:00Z", 10)
    assert [(i.key, i.attempts, i.last_error) for i in again] == [("k2", 1, "timeout")]
    settled = {i.key: i for i in await store.outbox_partition("notification", "Patient/p1", 10)}
    assert settled["k1"].status == "delivered" and settled["k1"].delivered_at is not None
    dead = await store.outbox_by_status("notification", "dead", 10)  # the console's given-up deliveries
    assert [(i.key, i.last_error, i.partition) for i in dead] == [("k3", "gone", "Patient/p2")]
    assert [i.key for i in await store.outbox_by_status("notification", "pending", 10)] == ["k2"]
    assert await store.outbox_by_status("notification", "dead", 10, dead[0].id) == []
    assert await store.outbox_by_status("nehp", "dead", 10) == []
    assert await store.outbox_counts(["notification", "nehp"]) == [  # the console's counts per topic and state
        ("notification", "dead", 1), ("notification", "delivered", 1), ("notification", "pending", 1)]
    assert await store.outbox_counts([]) == [] and await store.outbox_counts(["nehp"]) == []


async def test_jobs_are_created_replaced_listed_and_forgotten(store: Store) -> None:
    await store.transaction(lambda view: view.put_job("j1", "export", "running", b'{"n":1}'))
    await store.transaction(lambda view: view.put_job("j2", "export", "done", b'{"n":2}'))
    await store.transaction(lambda view: view.put_job("j1", "export", "done", b'{"n":3}'))
    job = await store.get_job("j1")
    assert job is not None and job[0] == "export" and job[1] == "done" and job[3] == b'{"n":3}'
    assert sorted(await store.list_jobs("export", "done")) == [("j1", b'{"n":3}'), ("j2", b'{"n":2}')]
    assert await store.list_jobs("export", "running") == []
    await store.transaction(lambda view: view.delete_job("j1"))
    assert await store.get_job("j1") is None


async def _stores(backend: Backend, location: str, store: Store) -> AsyncIterator[list[Store]]:
    """The store, and a second store on the same database where the backend allows it (two processes)."""
    stores = [store]
    if backend.shared:
        other = backend.build(location)
        await other.open()
        stores.append(other)
    try:
        yield stores
    finally:
        for extra in stores[1:]:
            await extra.close()


def conditional_create(iin: str, pid: str) -> Callable[[TxView], str]:
    """If-None-Exist: create ``pid`` unless a Patient with the IIN exists; the id that holds it."""
    def unit(view: TxView) -> str:
        found = view.search_ids(query("Patient", ("identifier", f"https://fhir.kzfhir.kz/sid/iin|{iin}")), 2)
        if found:
            return found[0][1]
        put_unit(patient(pid, "Иванов", iin))(view)
        return pid

    return unit


async def test_concurrent_conditional_creates_have_one_winner(backend: Backend, location: str, store: Store) -> None:
    async for stores in _stores(backend, location, store):
        results = await asyncio.gather(*(stores[n % len(stores)].transaction(conditional_create("777", f"c{n}"))
                                         for n in range(16)))
        assert len(set(results)) == 1
        found = await store.search(query("Patient", ("identifier", "https://fhir.kzfhir.kz/sid/iin|777")))
        assert [m.resource_id for m in found.matches] == [results[0]]


async def test_concurrent_updates_never_share_a_version(backend: Backend, location: str, store: Store) -> None:
    await put(store, patient("p1", "Иванов", "1"))

    def bump(view: TxView) -> tuple[int, str]:
        current = view.current("Patient", "p1")
        assert current is not None
        stored = put_unit(patient("p1", "Иванов", "1"), current.version + 1)(view)
        return stored.version, stored.last_updated

    async for stores in _stores(backend, location, store):
        results = await asyncio.gather(*(stores[n % len(stores)].transaction(bump) for n in range(20)))
        versions = sorted(v for v, _ in results)
        assert versions == list(range(2, 22))
        stamps = [stamp for _, stamp in sorted(results)]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)  # unique and increasing
        history = await store.history(HistoryQuery(type="Patient", id="p1", count=100))
        assert [e.version for e in history.entries] == list(range(21, 0, -1))
        assert len(set(history.seqs)) == 21


async def test_a_job_read_in_a_unit_and_written_back_is_one_atomic_step(backend: Backend, location: str,
                                                                        store: Store) -> None:
    """``TxView.job`` sees the unit's own ``put_job`` and the committed ones, and a read-then-put counter
    never hands out a number twice, also across two stores (subscription event numbers, issue 15 §5)."""
    await store.transaction(lambda view: view.put_job("n", "counter", "state", b'{"n":0}'))

    def bump(view: TxView) -> int:
        data = view.job("n")
        assert data is not None
        number = int(orjson.loads(data)["n"]) + 1
        view.put_job("n", "counter", "state", orjson.dumps({"n": number}))
        assert view.job("n") == orjson.dumps({"n": number})  # the unit's own write
        return number

    assert await store.transaction(lambda view: view.job("absent")) is None
    async for stores in _stores(backend, location, store):
        taken = await asyncio.gather(*(stores[n % len(stores)].transaction(bump) for n in range(20)))
        assert sorted(taken) == list(range(1, 21))
