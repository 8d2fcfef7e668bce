"""A small keep-alive HTTP/1.1 GET load generator (asyncio streams), so `make bench` needs nothing
installed by hand. Each connection sends one request at a time and reads the whole response."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass


@dataclass
class LoadResult:
    requests: int
    seconds: float
    latencies_ms: list[float]
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def line(self, label: str) -> str:
        return (f"{label}: {self.rps:,.0f} req/s, p50 {self.pct(50):.2f} ms, p99 {self.pct(99):.2f} ms, "
                f"mean {statistics.fmean(self.latencies_ms) if self.latencies_ms else 0:.2f} ms, "
                f"errors {self.errors}")


async def _connection(host: str, port: int, paths: list[str], offset: int, start: float, deadline: float,
                      out: list[float], errors: list[int], counted: list[int], extra: str) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = offset
    try:
        while True:
            now = time.perf_counter()
            if now >= deadline:
                return
            path = paths[i % len(paths)]
            i += 1
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/fhir+json\r\n{extra}\r\n"
                         .encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            done = time.perf_counter()
            if not head.startswith(b"HTTP/1.1 200"):
                errors[0] += 1
            if now >= start:  # after warm-up
                out.append((done - now) * 1000)
                counted[0] += 1
    finally:
        writer.close()


async def run_load(host: str, port: int, paths: list[str], *, connections: int = 32, seconds: float = 8.0,
                   warmup: float = 1.5, headers: dict[str, str] | None = None) -> LoadResult:
    t0 = time.perf_counter()
    start, deadline = t0 + warmup, t0 + warmup + seconds
    latencies: list[float] = []
    errors = [0]
    counted = [0]
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    await asyncio.gather(*(_connection(host, port, paths, n * 7919, start, deadline, latencies, errors, counted,
                                       extra) for n in range(connections)))
    return LoadResult(counted[0], seconds, latencies, errors[0])
