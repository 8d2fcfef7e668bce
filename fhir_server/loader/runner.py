"""Sends the items of ``sources`` to a FHIR endpoint with bounded concurrency, retrying transient
failures, and counts what went in.

Transient means the server did not process the request: it could not be reached (connect errors,
pool timeouts), or it said so (408, 429, 502, 503, 504; ``Retry-After`` is honoured). A request whose
response was lost after sending (read timeout, connection reset) is retried only when it is idempotent
(a PUT): a transaction that committed must not create its resources twice. Everything else is a
failure of that item, recorded with the server's OperationOutcome.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import orjson

from fhir_server.loader.progress import Progress
from fhir_server.loader.sources import Item, batch_of, phases, read_items

TRANSIENT = frozenset({408, 429, 502, 503, 504})
FHIR_JSON = "application/fhir+json"
HEADERS = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON, "Prefer": "return=minimal"}
MAX_BACKOFF = 30.0


@dataclass(frozen=True, slots=True)
class Failure:
    source: str
    status: int | None
    message: str
    outcome: dict[str, Any] | None = None

    def as_json(self) -> bytes:
        return orjson.dumps({"source": self.source, "status": self.status, "message": self.message,
                             "outcome": self.outcome})


@dataclass
class Summary:
    files: int = 0
    requests: int = 0
    loaded: int = 0
    failed: int = 0
    retries: int = 0
    elapsed: float = 0.0
    failures_file: Path | None = None
    first_failures: list[Failure] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.loaded / self.elapsed if self.elapsed > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"files": self.files, "requests": self.requests, "loaded": self.loaded, "failed": self.failed,
                "retries": self.retries, "seconds": round(self.elapsed, 3), "resourcesPerSecond": round(self.rate, 1),
                "failures": str(self.failures_file) if self.failures_file else None}

    def text(self) -> str:
        lines = [f"loaded {self.loaded:,} resources from {self.files:,} files in {self.elapsed:.1f} s "
                 f"({self.rate:,.0f} resources/s, {self.requests:,} requests, {self.retries:,} retries)"]
        if self.failed:
            lines.append(f"FAILED {self.failed:,} resources; every failure is in {self.failures_file}")
            lines += [f"  {f.source}: {f.status or '-'} {f.message}" for f in self.first_failures]
        return "\n".join(lines)


class FailureLog:
    """Failures as NDJSON, one object per failed resource or request; the file is created on the first."""

    def __init__(self, path: Path, summary: Summary) -> None:
        self.path = path
        self.summary = summary
        self._fh: IO[bytes] | None = None

    def add(self, failure: Failure, resources: int) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("wb")
            self.summary.failures_file = self.path
        self._fh.write(failure.as_json() + b"\n")
        self.summary.failed += resources
        if len(self.summary.first_failures) < 5:
            self.summary.first_failures.append(failure)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


def _message(response: httpx.Response) -> tuple[str, dict[str, Any] | None]:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip().splitlines()[0][:300] if response.text.strip() else response.reason_phrase, None
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        issues = body.get("issue") or [{}]
        first = issues[0] if isinstance(issues[0], dict) else {}
        text = first.get("diagnostics") or (first.get("details") or {}).get("text") or first.get("code") or ""
        return str(text)[:300], body
    return response.reason_phrase, None


def backoff(response: httpx.Response | None, attempt: int) -> float:
    """Seconds to wait before attempt ``attempt + 1``: the server's Retry-After, else exponential with jitter."""
    header = response.headers.get("retry-after") if response is not None else None
    if header and header.strip().isascii() and header.strip().isdigit():
        return min(MAX_BACKOFF, float(header))
    return min(MAX_BACKOFF, 0.25 * 2 ** attempt) * (0.5 + random.random() / 2)


class Loader:
    def __init__(self, client: httpx.AsyncClient, *, concurrency: int = 4, retries: int = 5, batch: int = 1,
                 progress: Progress, failures: FailureLog, summary: Summary) -> None:
        self.client = client
        self.concurrency = concurrency
        self.retries = retries
        self.batch = batch
        self.progress = progress
        self.failures = failures
        self.summary = summary

    async def run(self, files: list[Path]) -> Summary:
        started = time.monotonic()
        self.summary.files = len(files)
        for group in phases(files):  # a phase completes before the next starts (dependencies)
            await self._run_phase(self._items(group))
        self.summary.elapsed = time.monotonic() - started
        return self.summary

    def _items(self, files: Iterable[Path]) -> Iterator[Item]:
        singles: list[Item] = []
        for path in files:
            for item in read_items(path):
                if self.batch <= 1 or item.bundle_type is not None:
                    yield item
                    continue
                singles.append(item)
                if len(singles) >= self.batch:
                    yield batch_of(singles)
                    singles = []
        if singles:
            yield batch_of(singles)

    async def _run_phase(self, items: Iterator[Item]) -> None:
        queue: asyncio.Queue[Item | None] = asyncio.Queue(maxsize=self.concurrency * 2)

        async def worker() -> None:
            while (item := await queue.get()) is not None:
                await self.send(item)

        workers = [asyncio.create_task(worker()) for _ in range(self.concurrency)]
        try:
            for item in items:  # files are read as the workers make room: memory stays bounded
                await queue.put(item)
            for _ in workers:
                await queue.put(None)
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()

    async def _request(self, item: Item) -> httpx.Response:
        self.summary.requests += 1
        if item.bundle_type is not None:
            return await self.client.post("", content=item.body, headers=HEADERS)
        if item.resource_id is not None:
            return await self.client.put(f"{item.resource_type}/{item.resource_id}", content=item.body,
                                         headers=HEADERS)
        return await self.client.post(str(item.resource_type), content=item.body, headers=HEADERS)

    async def send(self, item: Item) -> None:
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = await self._request(item)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                if not last:  # nothing reached the server
                    await self._wait(None, attempt)
                    continue
                return self._fail(item, None, f"{type(exc).__name__}: {exc}")
            except httpx.TransportError as exc:
                if item.idempotent and not last:
                    await self._wait(None, attempt)
                    continue
                return self._fail(item, None, f"{type(exc).__name__}: {exc} (not retried: it may have been applied)")
            if response.status_code in TRANSIENT and not last:
                await self._wait(response, attempt)
                continue
            return self._judge(item, response)

    async def _wait(self, response: httpx.Response | None, attempt: int) -> None:
        self.summary.retries += 1
        await asyncio.sleep(backoff(response, attempt))

    def _fail(self, item: Item, status: int | None, message: str, outcome: dict[str, Any] | None = None) -> None:
        self.failures.add(Failure(item.source, status, message, outcome), item.resources)
        self.progress.advance(0, item.resources, item.weight)

    def _judge(self, item: Item, response: httpx.Response) -> None:
        if not response.is_success:
            message, outcome = _message(response)
            return self._fail(item, response.status_code, message, outcome)
        if item.bundle_type != "batch":
            self.summary.loaded += item.resources
            self.progress.advance(item.resources, 0, item.weight)
            return None
        entries = (response.json().get("entry") or []) if response.content else []
        failed = 0
        for n, entry in enumerate(entries):
            answer = entry.get("response") or {}
            status = str(answer.get("status", ""))
            if status[:1] == "2":
                continue
            failed += 1
            outcome = answer.get("outcome")
            issue = ((outcome or {}).get("issue") or [{}])[0]
            source = item.parts[n] if n < len(item.parts) else f"{item.source}#{n}"
            code = int(status.split()[0]) if status.split() and status.split()[0].isdigit() else None
            self.failures.add(Failure(source, code, str(issue.get("diagnostics") or status)[:300], outcome), 1)
        self.summary.loaded += item.resources - failed
        self.progress.advance(item.resources - failed, failed, item.weight)
        return None
