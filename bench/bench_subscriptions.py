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
arrived. The latency of a reading is arrival − the moment its PUT was sent (the notification names
the Observation as ``additional-context``).

Load: ``CONNECTIONS`` keep-alive connections each PUTting readings one after another, paced to
``RATE`` readings/s in all, for ``SECONDS`` — by default the issue's load, 1,000 readings/s for 60 s
(``KZFHIR_BENCH_SUB_RATE``, ``KZFHIR_BENCH_SUB_SECONDS``, ``KZFHIR_BENCH_SUB_PATIENTS`` change it). A
server that cannot keep up is not flooded: each connection waits for its answer, so the rate reached
is the server's capacity on this machine, and it is printed against the rate offered.

Two modes, each with its three rounds and its own figures: one PUT per reading, and — remote-monitoring
gateways upload what they collected in batches — a ``transaction`` Bundle of ``BATCH`` (20) readings per
request (``KZFHIR_BENCH_SUB_BATCH``, 0: that mode is not run; ``KZFHIR_BENCH_SUB_BUNDLE=batch`` for batch
Bundles), paced to the same readings/s. A batched reading's latency runs from its Bundle's request
being sent, as a reading's from its PUT's.

Wall time alone says little on a shared machine, so each figure comes with less noisy ones:

* **CPU per reading** — the server process's user + system CPU time (/proc) over the round, delivery of
  the round's notifications included, per reading written. Contention stretches wall time, not the
  work done: the ratio of the two rounds' CPU per reading is the ingest ratio the subscriptions cost a
  server that is CPU-bound, whatever else runs on the machine.
* **where the latency is** — each notification carries the time its write unit began (the event's
  ``timestamp``) and the time the worker built it (the Bundle's ``timestamp``), on the same clock as this
  process: sent → unit began is the write's wait in the server (HTTP, parsing, validation, the writer's
  queue); unit began → built is the commit and the outbox (wake-up, claim); built → received is the POST.
* **the path unloaded** — after the loaded rounds, ``PROBES`` critical readings one at a time, each
  waited for: the latency of the path itself, without queueing behind other writes.

Targets (issue 15): alert p99 ≤ 1 s; ingest with subscriptions ≥ 85 % of without. The last lines say
for each whether it is met, and whether the issue's load was reached at all.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import server

PATIENTS = int(os.environ.get("KZFHIR_BENCH_SUB_PATIENTS", "100"))
RATE = float(os.environ.get("KZFHIR_BENCH_SUB_RATE", "1000"))
SECONDS = float(os.environ.get("KZFHIR_BENCH_SUB_SECONDS", "60"))
#: the batched mode's readings per request, a gateway's upload: a Bundle of BATCH PUT entries (0: that mode
#: is not run; the single-reading mode, one PUT per reading, always is)
BATCH = int(os.environ.get("KZFHIR_BENCH_SUB_BATCH", "20"))
BUNDLE = os.environ.get("KZFHIR_BENCH_SUB_BUNDLE", "transaction")  # or "batch"
ISSUE_RATE, ISSUE_SECONDS = 1000.0, 60.0
CONNECTIONS = 16
#: every CRITICAL_EVERY-th reading is outside the limits (``KZFHIR_BENCH_SUB_CRITICAL_EVERY``; 0: none is,
#: to measure what the alerts themselves cost a reading)
CRITICAL_EVERY = int(os.environ.get("KZFHIR_BENCH_SUB_CRITICAL_EVERY", "10"))
PROBES = 20
P99_TARGET_MS = 1000.0
INGEST_TARGET = 0.85
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


def _epoch(instant: str) -> float:
    return datetime.fromisoformat(instant.replace("Z", "+00:00")).timestamp()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


@dataclass(slots=True)
class Arrival:
    received: float  # time.time() when the receiver had the body
    began: float  # the event's timestamp: when the reading's write unit began
    built: float  # the Bundle's timestamp: when the delivery worker built the notification


class Receiver:
    """A rest-hook endpoint: each critical-reading notification's arrival, by Observation id."""

    def __init__(self) -> None:
        self.arrived: dict[str, Arrival] = {}
        self.handshakes = 0
        self.changed = asyncio.Event()
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
                now = time.time()
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
                parts = {part["name"]: part for part in p["part"]}
                context = parts.get("additional-context")
                if context is not None:
                    oid = context["valueReference"]["reference"].rsplit("/", 1)[-1]
                    self.arrived.setdefault(oid, Arrival(now, _epoch(parts["timestamp"]["valueInstant"]),
                                                         _epoch(bundle["timestamp"])))
        self.changed.set()

    async def wait_for(self, oids: set[str], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not oids <= self.arrived.keys() and (left := deadline - time.monotonic()) > 0:
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except TimeoutError:
                return


@dataclass(slots=True)
class Round:
    label: str
    batch: int = 0  # readings per request (0: one PUT each)
    written: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0  # seconds, the round's notifications delivered included
    bench_cpu: float = 0.0  # this process: load generator and receiver
    load: str = ""
    sent: dict[str, tuple[float, float]] = field(default_factory=dict)  # critical oid: (sent, answered)

    @property
    def rate(self) -> float:
        return self.written / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        return self.server_cpu * 1000 / self.written if self.written else float("nan")

    def line(self) -> str:
        return (f"ingest {self.label}{_shape(self.batch)}: {self.rate:,.0f} readings/s ({self.written} in "
                f"{self.seconds:.1f} s, offered "
                f"{RATE:,.0f}/s); server CPU {self.cpu_ms:.2f} ms per reading ({self.server_cpu:.1f} s, "
                f"{self.server_cpu / self.seconds:.0%} of a core), load generator + receiver "
                f"{self.bench_cpu / self.seconds:.0%} of a core; load average {self.load}")


def _shape(batch: int) -> str:
    return f", {BUNDLE} Bundles of {batch}" if batch else ""


async def _write_load(base: str, tag: str, result: Round) -> None:
    """Write readings paced to RATE for SECONDS from CONNECTIONS connections, one PUT each or (``batch``)
    a Bundle of that many PUT entries per request; note, for each critical one, when its request was sent
    and when its answer came (time.time(), the server's clock too)."""
    batch = result.batch
    per_request = max(1, batch)
    interval = CONNECTIONS * per_request / RATE
    started = time.perf_counter()
    deadline = started + SECONDS

    async def connection(n: int) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60) as c:
            i, due = 0, started + n * interval / CONNECTIONS
            while (now := time.perf_counter()) < deadline:
                if now < due:
                    await asyncio.sleep(due - now)
                due += interval
                readings = []
                for _ in range(per_request):
                    k = n + i * CONNECTIONS
                    i += 1
                    readings.append((f"p{k % PATIENTS}", f"{tag}-{k}", CRITICAL_EVERY > 0 and k % CRITICAL_EVERY == 0))
                at = time.time()
                if not batch:
                    pid, oid, critical = readings[0]
                    r = await c.put(f"/Observation/{oid}", content=_reading(pid, oid, 180 if critical else 80),
                                    headers=HEADERS)
                    stored = [r.status_code in (200, 201)]
                else:
                    r = await c.post("/", content=_bundle(readings), headers=HEADERS)
                    stored = _entry_outcomes(r, len(readings))
                answered = time.time()
                for (_, oid, critical), ok in zip(readings, stored, strict=True):
                    if ok:
                        result.written += 1
                        if critical:
                            result.sent[oid] = (at, answered)

    await asyncio.gather(*(connection(n) for n in range(CONNECTIONS)))
    result.seconds = time.perf_counter() - started


def _bundle(readings: list[tuple[str, str, bool]]) -> bytes:
    """A gateway's upload: a Bundle (BUNDLE: transaction or batch) of PUT entries, one per reading."""
    entries = [{"fullUrl": f"Observation/{oid}", "resource": orjson.loads(_reading(pid, oid, 180 if critical else 80)),
                "request": {"method": "PUT", "url": f"Observation/{oid}"}} for pid, oid, critical in readings]
    return orjson.dumps({"resourceType": "Bundle", "type": BUNDLE, "entry": entries})


def _entry_outcomes(r: httpx.Response, count: int) -> list[bool]:
    """Which entries of a Bundle request were stored (a failed transaction: none)."""
    if r.status_code != 200:
        return [False] * count
    entries = orjson.loads(r.content).get("entry", [])
    return [str((e.get("response") or {}).get("status", "")).startswith(("200", "201")) for e in entries]


async def _round(base: str, tag: str, label: str, pid: int, receiver: Receiver, *, notified: bool,
                 batch: int = 0) -> Round:
    result = Round(label, batch)
    load_before = _load()
    cpu0, own0 = _cpu_seconds(pid), time.process_time()
    await _write_load(base, tag, result)
    # the round's work includes delivering its notifications (and, without, the idle tail of the same length)
    if notified:
        await receiver.wait_for(set(result.sent), 60)
    else:
        await asyncio.sleep(1.0)
    result.server_cpu, result.bench_cpu = _cpu_seconds(pid) - cpu0, time.process_time() - own0
    result.load = f"{load_before} → {_load()}"
    return result


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


def _spread(values: list[float]) -> str:
    return f"p50 {_pct(values, 50):.0f} ms, p99 {_pct(values, 99):.0f} ms"


async def _probe(c: httpx.AsyncClient, receiver: Receiver) -> list[float]:
    """PROBES critical readings one at a time, each waited for: the path's own latency, in ms."""
    latencies = []
    for n in range(PROBES):
        pid, oid = f"p{n % PATIENTS}", f"probe-{n}"
        at = time.time()
        (await c.put(f"/Observation/{oid}", content=_reading(pid, oid, 190), headers=HEADERS)).raise_for_status()
        await receiver.wait_for({oid}, 10)
        if oid in receiver.arrived:
            latencies.append((receiver.arrived[oid].received - at) * 1000)
        await asyncio.sleep(0.05)
    return latencies


def _verdict(met: bool) -> str:
    return "MET" if met else "NOT MET"


async def _run(port: int, pid: int) -> None:
    base = f"http://127.0.0.1:{port}"
    receiver = Receiver()
    endpoint = await receiver.start()
    modes = [0, BATCH] if BATCH else [0]
    print(f"{os.cpu_count()} cores; load average {_load()}; offered {RATE:,.0f} readings/s for {SECONDS:.0f} s "
          f"from {CONNECTIONS} connections, every {CRITICAL_EVERY}th critical, {PATIENTS} patients; one PUT per "
          f"reading{f', then {BUNDLE} Bundles of {BATCH} readings' if BATCH else ''}", flush=True)
    async with httpx.AsyncClient(base_url=base, timeout=60) as c:
        for n in range(PATIENTS):
            patient = f"p{n}"
            (await c.put(f"/Patient/{patient}", json={"resourceType": "Patient", "id": patient}, headers=HEADERS)
             ).raise_for_status()
            (await c.put(f"/Goal/g-{patient}", json=_goal(patient), headers=HEADERS)).raise_for_status()
        without = {}
        for batch in modes:
            without[batch] = await _round(base, f"a{batch}", "without subscriptions", pid, receiver, notified=False,
                                          batch=batch)
            print(without[batch].line(), flush=True)
        subscription_ids = []
        for n in range(PATIENTS):
            r = await c.post("/Subscription", json=_subscription(f"p{n}", endpoint), headers=HEADERS)
            r.raise_for_status()
            subscription_ids.append(r.headers["location"].split("/Subscription/", 1)[1].split("/", 1)[0])
        deadline = time.monotonic() + 60
        while receiver.handshakes < PATIENTS and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        print(f"{receiver.handshakes} of {PATIENTS} subscriptions active", flush=True)
        with_subs = {}
        for batch in modes:
            with_subs[batch] = await _round(base, f"b{batch}", f"with {PATIENTS} subscriptions", pid, receiver,
                                            notified=True, batch=batch)
            print(with_subs[batch].line(), flush=True)
        probes = await _probe(c, receiver)
        for n in range(PATIENTS):  # the same server and database again without: drift shows, warm-up cancels out
            (await c.delete(f"/Subscription/{subscription_ids[n]}")).raise_for_status()
        again = {}
        for batch in modes:
            again[batch] = await _round(base, f"c{batch}", "without subscriptions (again)", pid, receiver,
                                        notified=False, batch=batch)
            print(again[batch].line(), flush=True)
    await receiver.stop()

    for batch in modes:
        print(f"--- {'one PUT per reading' if not batch else f'{BUNDLE} Bundles of {batch} readings'}", flush=True)
        _report(without[batch], with_subs[batch], again[batch], receiver, probes if not batch else [])


def _report(without: Round, with_subs: Round, again: Round, receiver: Receiver, probes: list[float]) -> None:
    sent = with_subs.sent
    got = [(at, answered, receiver.arrived[oid]) for oid, (at, answered) in sent.items() if oid in receiver.arrived]
    latencies = [(a.received - at) * 1000 for at, _, a in got]
    if not latencies:
        print("no notification arrived: no latency to report", flush=True)
    else:
        print(f"TM-26 alert latency (reading's request sent → notification received), {len(latencies)} alerts: "
              f"{_spread(latencies)}, max {max(latencies):.0f} ms, mean {statistics.fmean(latencies):.0f} ms; "
              f"not arrived {len(sent) - len(latencies)}", flush=True)
        parts = [("sent → answered (the write, as the client sees it)", [w - at for at, w, _ in got]),
                 ("sent → write unit began (HTTP, parsing, validation, the writer's queue)",
                  [a.began - at for at, _, a in got]),
                 ("unit began → notification built (the unit, commit, outbox wake-up and claim)",
                  [a.built - a.began for _, _, a in got]),
                 ("built → received (the POST)", [a.received - a.built for _, _, a in got]),
                 ("unit began → received (what follows the write's wait: the subscription path)",
                  [a.received - a.began for _, _, a in got]),
                 ("answered → received (the alert after the write was acknowledged)",
                  [a.received - w for _, w, a in got])]
        for label, seconds in parts:
            print(f"  {label}: {_spread([x * 1000 for x in seconds])}", flush=True)
        if probes:
            print(f"unloaded path ({len(probes)} critical readings one at a time): p50 {_pct(probes, 50):.0f} ms, "
                  f"max {max(probes):.0f} ms", flush=True)
    # "without" is the mean of the rounds before and after: drift and warm-up weigh on both sides alike
    base_rate = (without.rate + again.rate) / 2
    base_cpu_ms = (without.server_cpu + again.server_cpu) * 1000 / (without.written + again.written)
    extra_ms = with_subs.cpu_ms - base_cpu_ms
    print(f"CPU the subscriptions cost: {extra_ms:+.2f} ms per reading, "
          f"{extra_ms * with_subs.written / max(1, len(got)):+.1f} ms per notification delivered "
          f"(without: {without.cpu_ms:.2f} and {again.cpu_ms:.2f} ms per reading)", flush=True)

    p99 = _pct(latencies, 99)
    wall = with_subs.rate / base_rate if base_rate else float("nan")
    by_cpu = base_cpu_ms / with_subs.cpu_ms if with_subs.cpu_ms else float("nan")
    reached = min(without.rate, with_subs.rate, again.rate)
    full = RATE >= ISSUE_RATE and SECONDS >= ISSUE_SECONDS and reached >= 0.95 * ISSUE_RATE
    print(f"TARGET alert p99 <= {P99_TARGET_MS:.0f} ms: {p99:.0f} ms — {_verdict(p99 <= P99_TARGET_MS)}", flush=True)
    print(f"TARGET ingest with subscriptions >= {INGEST_TARGET:.0%} of without: {wall:.0%} by rate — "
          f"{_verdict(wall >= INGEST_TARGET)}; {by_cpu:.0%} by server CPU per reading — "
          f"{_verdict(by_cpu >= INGEST_TARGET)}", flush=True)
    print(f"LOAD the issue's {ISSUE_RATE:,.0f} readings/s for {ISSUE_SECONDS:.0f} s: offered {RATE:,.0f}/s for "
          f"{SECONDS:.0f} s, reached {reached:,.0f}/s — {'REACHED' if full else 'NOT REACHED'}"
          f"{'' if full else ' (the targets above are judged at the rate reached, not at the issue load)'}; at "
          f"{base_cpu_ms:.2f} ms of server CPU per reading one core ingests at most "
          f"~{1000 / base_cpu_ms:,.0f} readings/s", flush=True)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        port = server.free_port()
        proc = server.start(["-m", "fhir_server.cli", "serve", "--port", str(port), "--database",
                             str(Path(tmp) / "subs.sqlite"), "--log-level", "warning", "--open"], port)
        try:
            asyncio.run(_run(port, proc.pid))
        finally:
            server.stop(proc)


if __name__ == "__main__":
    main()
