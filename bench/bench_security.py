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
    return asyncio.run(run_load("127.0.0.1", port, paths, connections=32, seconds=6, headers=headers))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        port = server.free_port()
        proc = _serve(tmp, port, secure=False)
        try:
            paths = _seed(port)
            own = [f"/Observation/o0-{k}" for k in range(OBS_PER_PATIENT)]
            off = _load(port, paths)
            off_own = _load(port, own)
        finally:
            server.stop(proc)  # type: ignore[arg-type]
        proc = _serve(tmp, port, secure=True)
        key = Path(tmp) / "jwks.json"
        try:
            patient = {"Authorization": "Bearer " + issue_dev_token("patient", "Patient/p0", key_path=key)}
            doctor = {"Authorization": "Bearer " + issue_dev_token("practitioner", "Practitioner/dr1", key_path=key)}
            on_patient = _load(port, own, patient)
            on_doctor = _load(port, paths, doctor)
        finally:
            server.stop(proc)  # type: ignore[arg-type]
    print(off.line("security off, 1,000 Observations"))
    print(on_doctor.line("security on, practitioner under consent (audit + patient notification)"))
    print(f"    overhead: {1 - on_doctor.rps / off.rps:.0%} fewer requests/s")
    print(off_own.line("security off, one patient's 5 Observations"))
    print(on_patient.line("security on, the patient reading their own data (audit)"))
    print(f"    overhead: {1 - on_patient.rps / off_own.rps:.0%} fewer requests/s")

