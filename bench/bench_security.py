"""Cost of the access policy + audit on read-by-id (issue 5): the same reads of the same database
with security switched off (``--open``) and on (a patient reading their own data; a practitioner
reading under a Consent). Target: overhead <= 20 %. Every secured read is authenticated (ES256 JWT),
judged by the consent engine (its verdict reused per caller, type and patient while the patient's
facts are unchanged), journaled before the response and chained as a BALP AuditEvent by the
server's writer during the run, and, for the practitioner, notified to the patient through the
outbox in the transaction that chains it (security/read_gate.py, docs/security.md §7).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
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


def _serve(tmp: str, port: int, *, secure: bool) -> object:
    cmd = ["-m", "fhir_server.cli", "serve", "--port", str(port), "--database", f"{tmp}/sec.sqlite",
           "--log-level", "warning"]
    env = {**os.environ, "KZFHIR_DEV_KEY_PATH": f"{tmp}/jwks.json"}
    return server.start(cmd if secure else [*cmd, "--open"], port, env=env)


def _load(port: int, paths: list[str], headers: dict[str, str] | None = None) -> LoadResult:
    return asyncio.run(run_load("127.0.0.1", port, paths, connections=32, seconds=5, headers=headers))


ROUNDS = 3  # off and on alternate, each in fresh processes: drift of the machine hits both halves alike


def main() -> None:
    results: list[tuple[LoadResult, LoadResult, LoadResult, LoadResult]] = []
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
                off, off_own = _load(port, paths), _load(port, own)
            finally:
                server.stop(proc)  # type: ignore[arg-type]
            proc = _serve(tmp, port, secure=True)
            try:
                patient = {"Authorization": "Bearer " + issue_dev_token("patient", "Patient/p0", key_path=key)}
                doctor = {"Authorization": "Bearer " + issue_dev_token("practitioner", "Practitioner/dr1",
                                                                         key_path=key)}
                on_patient, on_doctor = _load(port, own, patient), _load(port, paths, doctor)
            finally:
                server.stop(proc)  # type: ignore[arg-type]
            results.append((off, on_doctor, off_own, on_patient))
    for label_off, label_on, index in (
            ("security off, 1,000 Observations", "security on, practitioner under consent "
             "(audit + patient notification)", 0),
            ("security off, one patient's 5 Observations", "security on, the patient reading their own data "
             "(audit)", 2)):
        overheads = []
        for round_, result in enumerate(results, 1):
            off, on = result[index], result[index + 1]
            overheads.append(1 - on.rps / off.rps)
            print(f"round {round_}: " + off.line(label_off))
            print(f"round {round_}: " + on.line(label_on))
        print(f"    overhead: median {statistics.median(overheads):.0%} fewer requests/s "
              f"(rounds: {', '.join(f'{o:.0%}' for o in overheads)})")
