"""Cost of the access policy + audit on read-by-id (issue 5): the same reads of the same database
with security switched off (``--open``) and on (a patient reading their own data; a practitioner
reading under a Consent). Target: overhead <= 20 %. Every secured read is authenticated (ES256 JWT),
judged by the consent engine (its verdict reused per caller, type and patient while the patient's
facts are unchanged), journaled before the response and chained as a BALP AuditEvent by the
server's writer during the run, and, for the practitioner, notified to the patient through the
outbox in the transaction that chains it (security/read_gate.py, docs/security.md §7).

Two figures per round: requests/s (what a client sees; only meaningful on an otherwise idle machine) and
the server process's CPU time per request, the deferred chaining of the read audit included (it holds
when other work shares the cores: contention stretches wall time, not the work done per request).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import server
from bench.loadgen import LoadResult, run_load
from fhir_server.security.auth import issue_dev_token

PATIENTS = 200
OBS_PER_PATIENT = 5
HEADERS = {"content-type": "application/fhir+json", "prefer": "return=minimal"}


def _consent(pid: str) -> dict[str, object]:
    return {"resourceType": "Consent", "id": f"c-{pid}", "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                  "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": f"Patient/{pid}"},
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
            "provision": {"provision": [{"type": "permit", "actor": [{
                "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                     "code": "PRCP"}]},
                "reference": {"reference": "Practitioner/dr1"}}],
                                         "action": [{"coding": [{"code": "access"}]}]}]}}


def _seed(port: int) -> list[str]:
    paths = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as c:
        c.put("/Practitioner/dr1", json={"resourceType": "Practitioner", "id": "dr1"}, headers=HEADERS)
        for n in range(PATIENTS):
            pid = f"p{n}"
            c.put(f"/Patient/{pid}", json={"resourceType": "Patient", "id": pid, "gender": "female"}, headers=HEADERS)
            c.put(f"/Consent/c-{pid}", json=_consent(pid), headers=HEADERS).raise_for_status()
            for k in range(OBS_PER_PATIENT):
                oid = f"o{n}-{k}"
                obs = {"resourceType": "Observation", "id": oid, "status": "final", "code": {"text": "pulse"},
                       "subject": {"reference": f"Patient/{pid}"}, "valueQuantity": {"value": 70 + k}}
                c.put(f"/Observation/{oid}", json=obs, headers=HEADERS).raise_for_status()
                paths.append(f"/Observation/{oid}")
    return paths


def _serve(tmp: str, port: int, *, secure: bool) -> subprocess.Popen[bytes]:
    cmd = ["-m", "fhir_server.cli", "serve", "--port", str(port), "--database", f"{tmp}/sec.sqlite",
           "--log-level", "warning"]
    env = {**os.environ, "KZFHIR_DEV_KEY_PATH": f"{tmp}/jwks.json"}
    return server.start(cmd if secure else [*cmd, "--open"], port, env=env)


#: After a load the server still chains the journaled reads (within about a second): wait for it, so that
#: the CPU time counted includes the audit work that a read defers.
SETTLE_SECONDS = 1.5


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Measured:
    load: LoadResult
    cpu_us: float  # server CPU microseconds per answered request, deferred audit work included

    def line(self, label: str) -> str:
        return f"{self.load.line(label)}, server CPU {self.cpu_us:.0f} µs/request"


def _load(port: int, paths: list[str], pid: int, headers: dict[str, str] | None = None) -> Measured:
    before = _cpu_seconds(pid)
    result = asyncio.run(run_load("127.0.0.1", port, paths, connections=32, seconds=5, headers=headers))
    time.sleep(SETTLE_SECONDS)
    used = _cpu_seconds(pid) - before
    return Measured(result, used / max(1, result.requests) * 1e6)


ROUNDS = 3  # off and on alternate, each in fresh processes: drift of the machine hits both halves alike


def main() -> None:
    results: list[tuple[Measured, Measured, Measured, Measured]] = []
    with tempfile.TemporaryDirectory() as tmp:
        port = server.free_port()
        key = Path(tmp) / "jwks.json"
        paths: list[str] = []
        own = [f"/Observation/o0-{k}" for k in range(OBS_PER_PATIENT)]
        for round_ in range(ROUNDS):
            proc = _serve(tmp, port, secure=False)
            try:
                if round_ == 0:
                    paths = _seed(port)
                off, off_own = _load(port, paths, proc.pid), _load(port, own, proc.pid)
            finally:
                server.stop(proc)
            proc = _serve(tmp, port, secure=True)
            try:
                patient = {"Authorization": "Bearer " + issue_dev_token("patient", "Patient/p0", key_path=key)}
                doctor = {"Authorization": "Bearer " + issue_dev_token("practitioner", "Practitioner/dr1",
                                                                         key_path=key)}
                on_patient, on_doctor = _load(port, own, proc.pid, patient), _load(port, paths, proc.pid, doctor)
            finally:
                server.stop(proc)
            results.append((off, on_doctor, off_own, on_patient))
    for label_off, label_on, index in (
            ("security off, 1,000 Observations", "security on, practitioner under consent "
             "(audit + patient notification)", 0),
            ("security off, one patient's 5 Observations", "security on, the patient reading their own data "
             "(audit)", 2)):
        overheads, cpu = [], []
        for round_, result in enumerate(results, 1):
            off, on = result[index], result[index + 1]
            overheads.append(1 - on.load.rps / off.load.rps)
            cpu.append(on.cpu_us / off.cpu_us - 1)
            print(f"round {round_}: " + off.line(label_off))
            print(f"round {round_}: " + on.line(label_on))
        print(f"    overhead: median {statistics.median(overheads):.0%} fewer requests/s "
              f"(rounds: {', '.join(f'{o:.0%}' for o in overheads)}); server CPU per request: median "
              f"+{statistics.median(cpu):.0%} (rounds: {', '.join(f'{c:+.0%}' for c in cpu)}) — the CPU figure "
              "holds on a busy machine, requests/s only on a quiet one")
