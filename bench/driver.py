"""The load driver of the side-by-side benchmarks (bench/compare.py, bench/bench_postgres.py): transaction
ingest with K clients, read-by-id over C keep-alive connections (bench/loadgen.py), and one search repeated
on one connection. Loopback only; every loop is bounded in count and time.

The same request bytes go to every server: ``POST /`` with the Bundle, ``Prefer: return=minimal`` (a
loader's request: the server may still answer with bodies), and the ids read come from the answers'
``response.location``.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bench.loadgen import LoadResult, run_load
from bench.workload import Bundle

HOST = "127.0.0.1"
T = TypeVar("T")


def run(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine on uvloop when it is installed (it is: uvicorn's), else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        return asyncio.run(make())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(make())


@dataclass
class Ingested:
    resources: int
    failed: int
    seconds: float
    bundle_ms: list[float]
    retries: int = 0
    patients: list[str] = field(default_factory=list)
    observations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: (Observations in the Bundle, the id its Patient was stored under), per Bundle answered
    patient_observations: list[tuple[int, str]] = field(default_factory=list)

    def busiest_patient(self) -> str:
        """The stored id of the patient with the most Observations (the search benchmarks' patient)."""
        if not self.patient_observations:
            raise RuntimeError(f"no patient was stored: {self.errors}")
        return max(self.patient_observations)[1]

    @property
    def rate(self) -> float:
        return self.resources / self.seconds if self.seconds else 0.0


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, method: str, path: str,
                   body: bytes = b"", headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    head = (f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nAccept: application/fhir+json\r\n{extra}"
            + (f"Content-Type: application/fhir+json\r\nContent-Length: {len(body)}\r\n" if body else "") + "\r\n")
    writer.write(head.encode() + body)
    answer = await reader.readuntil(b"\r\n\r\n")
    status = int(answer.split(b" ", 2)[1])
    length, chunked = 0, False
    for line in answer.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
        elif name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            parts.append(await reader.readexactly(size + 2))
            if size == 0:
                break
        return status, b"".join(p[:-2] for p in parts)
    return status, await reader.readexactly(length) if length else b""


def _locations(answer: bytes) -> tuple[int, list[str], list[str], str | None]:
    """(entries answered 2xx, Patient ids, Observation ids, first failure) of a transaction-response."""
    doc = json.loads(answer)
    ok, patients, observations, failure = 0, [], [], None
    for entry in doc.get("entry", []):
        response = entry.get("response", {})
        if str(response.get("status", "")).startswith("2"):
            ok += 1
        elif failure is None:
            failure = str(response)[:200]
        parts = str(response.get("location", "")).split("/")
        at = parts.index("_history") if "_history" in parts else len(parts)
        if at >= 2:
            kind, rid = parts[at - 2], parts[at - 1]
            if kind == "Patient":
                patients.append(rid)
            elif kind == "Observation":
                observations.append(rid)
    return ok, patients, observations, failure


async def ingest(port: int, bundles: list[Bundle], *, clients: int = 4, headers: dict[str, str] | None = None,
                 max_seconds: float = 1800.0) -> Ingested:
    """POST every Bundle to ``/`` from ``clients`` keep-alive connections, each taking the next Bundle."""
    queue = list(reversed(bundles))
    out = Ingested(0, 0, 0.0, [])
    sent = {**(headers or {}), "Prefer": "return=minimal"}
    started = time.perf_counter()
    deadline = started + max_seconds

    async def client() -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            while queue and time.perf_counter() < deadline:
                bundle = queue.pop()
                t0 = time.perf_counter()
                try:
                    status, answer = await _request(reader, writer, "POST", "/", bundle.raw, sent)
                except (ConnectionError, asyncio.IncompleteReadError):
                    # the server closed the kept-alive connection before reading the request (its keep-alive
                    # timer fired first, as it can on a starved machine): one new connection, the request again
                    writer.close()
                    reader, writer = await asyncio.open_connection(HOST, port)
                    out.retries += 1
                    status, answer = await _request(reader, writer, "POST", "/", bundle.raw, sent)
                out.bundle_ms.append((time.perf_counter() - t0) * 1000)
                if status >= 300:
                    out.failed += bundle.entries
                    if len(out.errors) < 5:
                        out.errors.append(f"HTTP {status}: {answer[:300]!r}")
                    continue
                ok, patients, observations, failure = _locations(answer)
                if bundle.registered:
                    patients = [bundle.patient_id]
                if patients:
                    out.patient_observations.append((bundle.observations, patients[0]))
                out.resources += ok
                out.failed += bundle.entries - ok
                out.patients += patients
                out.observations += observations
                if failure and len(out.errors) < 5:
                    out.errors.append(failure)
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    out.seconds = time.perf_counter() - started
    return out


def read_paths(done: Ingested, limit: int = 2000) -> list[str]:
    """Patients and Observations interleaved (the peer harness's read set)."""
    paths: list[str] = []
    for i in range(max(len(done.patients[:limit]), len(done.observations[:limit]))):
        if i < len(done.patients):
            paths.append(f"/Patient/{done.patients[i]}")
        if i < len(done.observations):
            paths.append(f"/Observation/{done.observations[i]}")
    return paths[:limit]


async def read(port: int, paths: list[str], *, connections: int = 16, seconds: float = 6.0, warmup: float = 1.5,
               headers: dict[str, str] | None = None) -> LoadResult:
    return await run_load(HOST, port, paths, connections=connections, seconds=seconds, warmup=warmup,
                          headers=headers)


@dataclass
class Searched:
    query: str
    repeats: int
    errors: int
    matches: int
    latencies_ms: list[float]

    def pct(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")

    @property
    def mean(self) -> float:
        return statistics.fmean(self.latencies_ms) if self.latencies_ms else float("nan")


async def search(port: int, query: str, *, repeats: int = 200, max_seconds: float = 60.0,
                 headers: dict[str, str] | None = None) -> Searched:
    """One query repeated on one connection (after one untimed warm-up request)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    out = Searched(query, 0, 0, 0, [])
    deadline = time.perf_counter() + max_seconds
    try:
        status, body = await _request(reader, writer, "GET", query, headers=headers)
        if status == 200:
            out.matches = sum(1 for e in json.loads(body).get("entry", [])
                              if e.get("search", {}).get("mode", "match") == "match")
        for _ in range(repeats):
            if time.perf_counter() > deadline:
                break
            t0 = time.perf_counter()
            status, body = await _request(reader, writer, "GET", query, headers=headers)
            out.latencies_ms.append((time.perf_counter() - t0) * 1000)
            out.repeats += 1
            out.errors += status != 200
    finally:
        writer.close()
    return out

