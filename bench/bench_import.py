"""Bulk ``$import`` benchmark: the 75 Synthea bundles flattened to NDJSON (one file per type, 25,032
resources after de-duplicating the shared Organizations/Practitioners; ``urn:uuid:`` references rewritten to
``Type/id``) in a temporary import folder, imported by one folder kick-off into a fresh server (in-process,
real HTTP through the ASGI transport, **validation on**), timed from kick-off to the complete manifest.

Two runs: open mode, and security on (a ``system`` token with its BIN, every patient's Consent letting that
organisation collect and correct its data, ``update_as_create=all`` so that the files' ids are kept), where
every line is also judged by the policy and audited. Figures are resources per second of the whole job
(read, parse, validate, index, write, judge, audit). Also printed: the validation workers used and the
machine's load average, since the figure depends on both, and the CPU time per resource of the writer thread,
the server process and the validation workers (``/proc``), which a loaded machine inflates less than the rate.
``KZFHIR_BENCH_IMPORT_RUNS=open`` (or ``secure``) runs one of the two imports alone.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.operations.import_pool import worker_count
from tests.data import synthea_bundles

BASE = "http://kzfhir.bench"
BIN = "940140000385"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"


def _rewrite(node: Any, ids: dict[str, str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and value.startswith("urn:uuid:"):
                node[key] = ids.get(value, value)
            else:
                _rewrite(value, ids)
    elif isinstance(node, list):
        for value in node:
            _rewrite(value, ids)


def synthea_ndjson(folder: Path, limit: int | None = None) -> dict[str, int]:
    """The Synthea transaction Bundles (the first ``limit`` of them) as ``<Type>.ndjson`` files in
    ``folder``; resources per type."""
    seen: set[tuple[str, str]] = set()
    files: dict[str, list[bytes]] = {}
    for path in synthea_bundles()[:limit]:
        bundle = orjson.loads(gzip.decompress(path.read_bytes()))
        ids = {e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}
        for entry in bundle["entry"]:
            resource = entry["resource"]
            key = (resource["resourceType"], resource["id"])
            if key in seen:
                continue
            seen.add(key)
            _rewrite(resource, ids)
            files.setdefault(resource["resourceType"], []).append(orjson.dumps(resource))
    for rtype, lines in files.items():
        (folder / f"{rtype}.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    return {rtype: len(lines) for rtype, lines in sorted(files.items())}


def _consents(patients: Path) -> bytes:
    """One Consent per Synthea patient: the organisation of the bench's system token may collect, correct
    and read its data (AC-01)."""
    lines = []
    for line in patients.read_bytes().splitlines():
        pid = orjson.loads(line)["id"]
        lines.append(orjson.dumps({
            "resourceType": "Consent", "id": f"c-{pid}"[:64], "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                  "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": f"Patient/{pid}"}, "dateTime": "2025-01-01",
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                       "code": "OPTIN"}]},
            "provision": {"provision": [{
                "type": "permit",
                "actor": [{"role": {"coding": [{"system": PARTICIPATION, "code": "PRCP"}]},
                           "reference": {"identifier": {"system": "https://fhir.kzfhir.kz/sid/bin", "value": BIN}}}],
                "action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": c}]}
                           for c in ("access", "collect", "correct")]}]},
        }))
    return b"\n".join(lines) + b"\n"


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu(stat_path: str) -> float:
    """CPU seconds (user + system) of a task or process, from its ``/proc`` stat line."""
    try:
        with open(stat_path) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _children() -> set[int]:
    """The processes this one forked (the validation workers), from every thread's ``children`` list."""
    found: set[int] = set()
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as handle:
                found.update(int(pid) for pid in handle.read().split())
        except OSError:
            continue
    return found


@dataclass(slots=True)
class CpuUse:
    """CPU seconds an import cost, by where they were spent (so that a figure measured on a loaded machine
    still says something: wall-clock rates there are the machine's, CPU per resource is the server's)."""

    writer: float = 0.0  # the SQLite writer thread
    server: float = 0.0  # the whole server process (writer, event loop, the pool's result thread, ...)
    workers: float = 0.0  # the validation worker processes
    worker_cpu: dict[int, float] = field(default_factory=dict)

    def line(self, n: int) -> str:
        def us(seconds: float) -> str:
            return f"{seconds / max(n, 1) * 1e6:,.0f} us"

        return (f"  CPU per resource: writer thread {us(self.writer)}, server process {us(self.server)}, "
                f"validation workers {us(self.workers)}; all {us(self.server + self.workers)}")


def _writer_stat() -> str:
    for thread in threading.enumerate():
        if thread.name == "kzfhir-sqlite-writer" and thread.native_id is not None:
            return f"/proc/self/task/{thread.native_id}/stat"
    return "/dev/null"


async def _import(client: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str]
                  ) -> tuple[dict[str, Any], float, CpuUse]:
    use = CpuUse()
    writer = _writer_stat()
    writer_before, server_before = _cpu(writer), time.process_time()
    started = time.perf_counter()
    r = await client.post("/$import", content=orjson.dumps(body),
                          headers={**headers, "Prefer": "respond-async", "Content-Type": "application/fhir+json"})
    r.raise_for_status()
    status_url = r.headers["content-location"]
    polls = 0
    while (r := await client.get(status_url, headers=headers)).status_code == 202:
        polls += 1
        if polls % 4 == 0:  # the workers' CPU so far (they exit with the job)
            for pid in _children():
                use.worker_cpu[pid] = max(use.worker_cpu.get(pid, 0.0), _cpu(f"/proc/{pid}/stat"))
        await asyncio.sleep(0.05)
    r.raise_for_status()
    seconds = time.perf_counter() - started
    use.writer = _cpu(writer) - writer_before
    use.server = time.process_time() - server_before
    use.workers = sum(use.worker_cpu.values())
    return r.json(), seconds, use


def _folder_request(url: str) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": [
        {"name": "inputFormat", "valueCode": "application/fhir+ndjson"},
        {"name": "input", "part": [{"name": "url", "valueUri": url}]}]}


async def _run(tmp: Path, root: Path, secure: bool) -> None:
    settings = Settings(database=tmp / f"bench-{secure}.sqlite", synchronous_full=False, security_enabled=secure,
                        import_root=root, dev_key_path=tmp / "jwks.json", update_as_create="all")
    headers: dict[str, str] = {}
    if secure:
        # the patients and their Consents are there first (registered by the MIS earlier, here in open mode)
        seeding = create_app(settings.model_copy(update={"security_enabled": False}))
        async with seeding.router.lifespan_context(seeding.app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=seeding), base_url=BASE, timeout=600
        ) as client:
            manifest, _, _ = await _import(client, _folder_request("registration"), headers)
            assert not manifest["error"], manifest["error"]
        from fhir_server.security.auth import issue_dev_token

        token = issue_dev_token("system", None, key_path=settings.dev_key_path, bin=BIN)
        headers = {"Authorization": f"Bearer {token}"}
    app = create_app(settings)
    async with app.router.lifespan_context(app.app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE, timeout=600
    ) as client:
        manifest, seconds, use = await _import(client, _folder_request("synthea"), headers)
        n = sum(o["count"] for o in manifest["output"])
        refused = sum(e["count"] for e in manifest["error"])
        label = "security on (system token, policy + audit)" if secure else "open mode"
        print(f"$import, validation on, {label:<44} {n:>7} resources in {seconds:6.2f} s = "
              f"{n / seconds:>8,.0f} resources/s ({refused} refused)", flush=True)
        print(use.line(n), flush=True)


def main() -> None:
    workers = worker_count(Settings().import_validation_workers)
    print(f"validation workers: {workers} processes; cores: {os.cpu_count()}; load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        root = tmp / "import-root"
        (root / "synthea").mkdir(parents=True)
        (root / "registration").mkdir()
        per_type = synthea_ndjson(root / "synthea")
        print(f"input: {sum(per_type.values())} resources of {len(per_type)} types, "
              f"{sum(p.stat().st_size for p in (root / 'synthea').iterdir()) / 1e6:.1f} MB of NDJSON")
        runs = os.environ.get("KZFHIR_BENCH_IMPORT_RUNS", "open,secure").split(",")
        if "open" in runs:
            asyncio.run(_run(tmp, root, secure=False))
        if "secure" not in runs:
            return
        (root / "synthea" / "Patient.ndjson").rename(root / "registration" / "1-Patient.ndjson")
        (root / "registration" / "2-Consent.ndjson").write_bytes(_consents(root / "registration" / "1-Patient.ndjson"))
        asyncio.run(_run(tmp, root, secure=True))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
