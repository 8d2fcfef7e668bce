"""``kzfhir load --demo``: the Kazakhstan sample dataset goes into a server running the secure default,
and the printed tokens see what their Consents grant (issue 13 item 2)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.demo import build, dataset
from fhir_server.security.auth import issue_dev_token
from profiles.identifiers import is_valid_bin, is_valid_iin
from tests.live_server import free_port, start_server

ROOT = Path(__file__).resolve().parents[2]


def _identifiers(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node] if isinstance(node.get("system"), str) and node["system"].endswith(("/sid/iin", "/sid/bin")) \
            and "value" in node else []
        return found + [i for v in node.values() for i in _identifiers(v)]
    if isinstance(node, list):
        return [i for v in node for i in _identifiers(v)]
    return []


def test_the_shipped_files_are_what_the_builder_writes() -> None:
    assert build.main(["--check"]) == 0


def test_every_iin_and_bin_is_valid_and_every_person_distinct() -> None:
    found = [i for content in build.dataset().values() for i in _identifiers(content)]
    iins = {i["value"] for i in found if i["system"].endswith("iin")}
    bins = {i["value"] for i in found if i["system"].endswith("bin")}
    assert len(iins) == len(build.PATIENTS) + len(build.PRACTITIONERS)
    assert len(bins) == len(build.ORGANIZATIONS)
    assert all(is_valid_iin(v) for v in iins), iins
    assert all(is_valid_bin(v) for v in bins), bins
    for record in dataset.patients(0):  # the IIN's first six digits are the birth date
        iin = record.patient["identifier"][0]["value"]
        assert record.patient["birthDate"].replace("-", "")[2:] == iin[:6]


def test_dates_move_by_whole_weeks_and_birth_dates_stay() -> None:
    weeks = dataset.weeks_to(date(2027, 3, 17))  # a Wednesday
    assert weeks == (date(2027, 3, 15) - build.ANCHOR).days // 7
    moved = dataset.patients(weeks)[0]
    original = dataset.patients(0)[0]
    assert moved.patient["birthDate"] == original.patient["birthDate"]
    assert moved.consent["provision"]["period"]["start"] == "2027-03-01"
    slots = [e["resource"] for e in dataset.directory(weeks)["entry"] if e["resource"]["resourceType"] == "Slot"]
    assert min(s["start"] for s in slots) == "2027-03-15T09:00:00+05:00"


def _kzfhir(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fhir_server.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def _tokens(output: str) -> dict[str, str]:
    return dict(re.findall(r"export (\w+_(?:TOKEN|ID))=(\S+)", output))


def _get(base: str, path: str, token: str) -> httpx.Response:
    return httpx.get(f"{base}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30)


@pytest.mark.slow
def test_demo_into_a_secure_live_server_and_what_each_token_sees(tmp_path: Path) -> None:
    port, key = free_port(), tmp_path / "dev-jwks.json"
    server = start_server(tmp_path / "db.sqlite", port, open_mode=False, dev_keys=key)
    base = f"http://127.0.0.1:{port}"
    try:
        run = _kzfhir("load", "--demo", "--base", base, "--dev-key", str(key), "--tokens", str(tmp_path / "t.sh"))
        assert run.returncode == 0, run.stderr
        assert "6 Patient" in run.stdout and "6 Consent" in run.stdout and "90 Slot" in run.stdout
        tokens = _tokens(run.stdout)
        assert set(tokens) == {"SYSTEM_TOKEN", "DOCTOR_TOKEN", "PATIENT_TOKEN", "ADMIN_TOKEN", "PATIENT_ID"}
        pid = tokens["PATIENT_ID"]
        assert _tokens((tmp_path / "t.sh").read_text(encoding="utf-8").replace("'", "")) == tokens
        # the doctor named in every Consent sees all six patients; a doctor nobody consented to, none
        doctor = _get(base, "/Patient?_count=50", tokens["DOCTOR_TOKEN"]).json()
        assert len(doctor["entry"]) == 6
        stranger = issue_dev_token("practitioner", "Practitioner/not-in-the-demo", key_path=key)
        assert "entry" not in _get(base, "/Patient?_count=50", stranger).json()
        # the patient's own record, with the remote-monitoring plan and the alert its last reading raised
        everything = _get(base, f"/Patient/{pid}/$everything", tokens["PATIENT_TOKEN"]).json()
        types = {e["resource"]["resourceType"] for e in everything["entry"]}
        assert {"Patient", "Consent", "Appointment", "Encounter", "Observation", "CarePlan", "Goal",
                "ServiceRequest", "DetectedIssue"} <= types
        consents = _get(base, f"/Consent?patient=Patient/{pid}", tokens["PATIENT_TOKEN"]).json()["entry"]
        assert [e["resource"]["status"] for e in consents] == ["active"]
        iin = _get(base, f"/Patient/{pid}", tokens["PATIENT_TOKEN"]).json()["identifier"][0]["value"]
        assert iin == dataset.patients(0)[0].patient["identifier"][0]["value"]
        free = _get(base, "/Slot?status=free&_count=100", tokens["SYSTEM_TOKEN"]).json()
        assert len(free["entry"]) == 90 - 6  # each patient's next appointment took a slot
        # the admin maintains the directory but sees no clinical data
        assert _get(base, "/Observation?_count=1", tokens["ADMIN_TOKEN"]).status_code == 403
        assert _get(base, "/Organization?_count=5", tokens["ADMIN_TOKEN"]).status_code == 200
        again = _kzfhir("load", "--demo", "--base", base, "--dev-key", str(key))
        assert again.returncode == 0, again.stderr  # loading twice updates in place
        assert len(_get(base, "/Patient?_count=50", tokens["DOCTOR_TOKEN"]).json()["entry"]) == 6  # no duplicates
        assert f"Patient/{pid}" in again.stdout  # the same patients, found by their demo identifiers
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_demo_into_a_database_in_process(tmp_path: Path) -> None:
    run = _kzfhir("load", "--demo", "--database", str(tmp_path / "db.sqlite"), "--dev-key", str(tmp_path / "k.json"))
    assert run.returncode == 0, run.stderr
    assert "kzfhir serve --database" in run.stdout
    assert json.loads((tmp_path / "k.json").read_text(encoding="utf-8"))["keys"]


def test_demo_without_the_servers_key_is_one_line_and_exit_2(tmp_path: Path) -> None:
    run = _kzfhir("load", "--demo", "--dev-key", str(tmp_path / "missing.json"))
    assert run.returncode == 2
    assert len(run.stderr.strip().splitlines()) == 1
    assert "no development key" in run.stderr
