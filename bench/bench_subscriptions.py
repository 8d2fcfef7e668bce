"""TM-26 alert latency through Subscriptions (issue 15 "Proof"): a reading written → the critical-reading
notification received by a rest-hook receiver, with 100 active subscriptions; and the ingest rate of
Observations with those subscriptions active vs none.

A real server process (``kzfhir serve --open``: access is measured by bench_security.py) on a fresh
database: ``PATIENTS`` patients, each with an active Goal (heart rate 50..120). Round 1 writes readings
with no Subscription; round 2 creates one critical-reading Subscription per patient (filter
``DetectedIssue?patient=``, id-only, 100 by default), then writes the same load. Every
``CRITICAL_EVERY``-th reading is outside the limits: the server records the DetectedIssue, the TM-26
notices and, in round 2, the event of that patient's subscription, in the reading's own write unit; the
delivery worker POSTs the notification to a local receiver in this process, which notes when it
arrived. The latency of a reading is arrival − the moment its POST was sent (the notification names
the Observation as ``additional-context``).

Load: ``CONNECTIONS`` keep-alive connections each POSTing readings one after another, paced to
``RATE`` readings/s in all (the issue's figure is 1,000/s for 60 s; the defaults are sized for a small
shared machine: ``KZFHIR_BENCH_SUB_RATE``, ``KZFHIR_BENCH_SUB_SECONDS``, ``KZFHIR_BENCH_SUB_PATIENTS``
change them). Targets: p99 ≤ 1 s, ingest with subscriptions ≥ 85 % of without.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import server

PATIENTS = int(os.environ.get("KZFHIR_BENCH_SUB_PATIENTS", "100"))
RATE = float(os.environ.get("KZFHIR_BENCH_SUB_RATE", "200"))
SECONDS = float(os.environ.get("KZFHIR_BENCH_SUB_SECONDS", "20"))
CONNECTIONS = 16
CRITICAL_EVERY = 10
TOPIC = "https://fhir.kzfhir.kz/SubscriptionTopic/critical-reading"
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
HEADERS = {"content-type": "application/fhir+json", "prefer": "return=minimal"}


def _goal(pid: str) -> dict[str, Any]:
    return {"resourceType": "Goal", "id": f"g-{pid}", "lifecycleStatus": "active", "description": {"text": "pulse"},
            "subject": {"reference": f"Patient/{pid}"},
            "target": [{"measure": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                        "detailRange": {"low": {"value": 50}, "high": {"value": 120}}}]}


def _reading(pid: str, oid: str, value: int) -> bytes:
    return orjson.dumps({
        "resourceType": "Observation", "id": oid, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "Heart rate"},
        "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": "2026-12-01T08:00:00+05:00",
        "valueQuantity": {"value": value, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}})


def _subscription(pid: str, endpoint: str) -> dict[str, Any]:
    return {"resourceType": "Subscription", "status": "requested", "reason": "bench", "criteria": TOPIC,
            "_criteria": {"extension": [{"url": f"{BACKPORT}/backport-filter-criteria",
                                         "valueString": f"DetectedIssue?patient=Patient/{pid}"}]},
            "channel": {"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json",
                        "_payload": {"extension": [{"url": f"{BACKPORT}/backport-payload-content",
                                                    "valueCode": "id-only"}]}}}


class Receiver:
    """A rest-hook endpoint: the arrival time of each critical-reading notification, by Observation id."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.handshakes = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/hook"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):  # the server keeps its connections alive: close them here
            writer.close()
        await asyncio.sleep(0.1)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line[15:]) for line in head.split(b"\r\n")
                               if line[:15].lower() == b"content-length:"), 0)
                body = await reader.readexactly(length) if length else b""
                now = time.perf_counter()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                self._note(body, now)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
        finally:
            self._writers.discard(writer)

    def _note(self, body: bytes, now: float) -> None:
        bundle = orjson.loads(body)
        for p in bundle["entry"][0]["resource"]["parameter"]:
            if p["name"] == "type" and p["valueCode"] == "handshake":
                self.handshakes += 1
            if p["name"] == "notification-event":
                for part in p["part"]:
                    if part["name"] == "additional-context":
                        self.arrived.setdefault(part["valueReference"]["reference"].rsplit("/", 1)[-1], now)


async def _write_load(base: str, tag: str) -> tuple[int, float, dict[str, tuple[float, float]]]:
    """PUT readings paced to RATE for SECONDS; (readings written, seconds, for each critical one the time
    its request was sent and the time its response came)."""
    sent: dict[str, tuple[float, float]] = {}
    written = [0]
    interval = CONNECTIONS / RATE
    started = time.perf_counter()
    deadline = started + SECONDS

    async def connection(n: int) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60) as c:
            i, due = 0, started + n * interval / CONNECTIONS
            while (now := time.perf_counter()) < deadline:
                if now < due:
                    await asyncio.sleep(due - now)
                due += interval
                k = n + i * CONNECTIONS
                i += 1
                pid, oid = f"p{k % PATIENTS}", f"{tag}-{k}"
                critical = k % CRITICAL_EVERY == 0
                at = time.perf_counter()
                r = await c.put(f"/Observation/{oid}", content=_reading(pid, oid, 180 if critical else 80),
                                headers=HEADERS)
                if r.status_code in (200, 201):
                    written[0] += 1
                    if critical:
                        sent[oid] = (at, time.perf_counter())

    await asyncio.gather(*(connection(n) for n in range(CONNECTIONS)))
    return written[0], time.perf_counter() - started, sent


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


async def _run(port: int) -> None:
    base = f"http://127.0.0.1:{port}"
    receiver = Receiver()
    endpoint = await receiver.start()
    async with httpx.AsyncClient(base_url=base, timeout=60) as c:
        for n in range(PATIENTS):
            pid = f"p{n}"
            (await c.put(f"/Patient/{pid}", json={"resourceType": "Patient", "id": pid}, headers=HEADERS)
             ).raise_for_status()
            (await c.put(f"/Goal/g-{pid}", json=_goal(pid), headers=HEADERS)).raise_for_status()
        without, seconds0, _ = await _write_load(base, "a")
        print(f"ingest without subscriptions: {without / seconds0:,.0f} readings/s "
              f"({without} in {seconds0:.1f} s, paced to {RATE:,.0f}/s)", flush=True)
        for n in range(PATIENTS):
            (await c.post("/Subscription", json=_subscription(f"p{n}", endpoint), headers=HEADERS)).raise_for_status()
        deadline = time.monotonic() + 60
        while receiver.handshakes < PATIENTS and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        print(f"{receiver.handshakes} of {PATIENTS} subscriptions active", flush=True)
        with_subs, seconds1, sent = await _write_load(base, "b")
        print(f"ingest with {PATIENTS} subscriptions: {with_subs / seconds1:,.0f} readings/s "
              f"({with_subs / seconds1 / (without / seconds0):.0%} of without; target >= 85 %)", flush=True)
        deadline = time.monotonic() + 30
        while len(set(sent) & set(receiver.arrived)) < len(sent) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    await receiver.stop()
    arrived = [(oid, at, answered) for oid, (at, answered) in sent.items() if oid in receiver.arrived]
    latencies = [(receiver.arrived[oid] - at) * 1000 for oid, at, _ in arrived]
    writes = [(answered - at) * 1000 for _, at, answered in arrived]
    after = [(receiver.arrived[oid] - answered) * 1000 for oid, _, answered in arrived]
    if latencies:
        print(f"TM-26 alert latency (reading sent → notification received), {len(latencies)} alerts: "
              f"p50 {_pct(latencies, 50):.0f} ms, p99 {_pct(latencies, 99):.0f} ms, "
              f"max {max(latencies):.0f} ms, mean {statistics.fmean(latencies):.0f} ms; "
              f"not arrived {len(sent) - len(latencies)}; target p99 <= 1000 ms", flush=True)
        print(f"  of which the write's own response: p50 {_pct(writes, 50):.0f} ms, p99 {_pct(writes, 99):.0f} ms; "
              f"response → notification: p50 {_pct(after, 50):.0f} ms, p99 {_pct(after, 99):.0f} ms", flush=True)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        port = server.free_port()
        proc = server.start(["-m", "fhir_server.cli", "serve", "--port", str(port), "--database",
                             str(Path(tmp) / "subs.sqlite"), "--log-level", "warning", "--open"], port)
        try:
            asyncio.run(_run(port))
        finally:
            server.stop(proc)


if __name__ == "__main__":
    main()
