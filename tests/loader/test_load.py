"""``kzfhir load``: every input form into a database through the server's own write path, failures
written with the server's OperationOutcome, one-line CLI errors (issue 13 item 2)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.security.auth import issue_dev_token
from tests.conftest import BASE

BIN = "940140000385"


def kzfhir(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fhir_server.cli", *args], capture_output=True, text=True,
                          timeout=300, env=env, cwd=cwd)


def _practitioner(pid: str, family: str) -> dict[str, Any]:
    return {"resourceType": "Practitioner", "id": pid, "name": [{"family": family}]}


def _inputs(folder: Path) -> None:
    """One file of each kind: a single resource, a collection Bundle (gz), NDJSON (gz, one line invalid,
    one without id), a batch Bundle, and a file of another kind that is not picked up."""
    sub = folder / "nested"
    sub.mkdir(parents=True)
    (folder / "one.json").write_text(json.dumps(_practitioner("single", "Иванов")), encoding="utf-8")
    collection = {"resourceType": "Bundle", "type": "collection",
                  "entry": [{"resource": _practitioner(f"c{n}", "Петров")} for n in range(3)]}
    (sub / "collection.json.gz").write_bytes(gzip.compress(json.dumps(collection).encode()))
    lines = [json.dumps({"resourceType": "Location", "id": f"l{n}", "name": f"Кабинет {n}"}) for n in range(4)]
    lines.insert(2, json.dumps({"resourceType": "Location", "id": "bad", "status": "not-a-status"}))
    lines.append(json.dumps({"resourceType": "Location", "name": "без id"}))
    (sub / "Location.ndjson.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n\n").encode()))
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": _practitioner("b1", "Ким"), "request": {"method": "PUT", "url": "Practitioner/b1"}},
        {"resource": {"resourceType": "Practitioner", "gender": "unknown-gender"},
         "request": {"method": "POST", "url": "Practitioner"}}]}
    (folder / "batch.json").write_text(json.dumps(batch), encoding="utf-8")
    (folder / "notes.txt").write_text("not FHIR", encoding="utf-8")


async def _read(settings: Settings, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        return await c.get(path, headers=headers)


@pytest.mark.parametrize("batch", ["1", "3"])
async def test_every_input_form_loads_and_failures_are_written(tmp_path: Path, batch: str) -> None:
    _inputs(tmp_path / "in")
    db, failures = tmp_path / "db.sqlite", tmp_path / "failed.ndjson"
    run = kzfhir("load", str(tmp_path / "in"), "--database", str(db), "--open", "--json", "--batch", batch,
                 "--failures", str(failures), "--progress", "lines")
    assert run.returncode == 1, run.stderr  # some resources failed
    assert "security OFF" in run.stderr
    summary = json.loads(run.stdout)
    assert summary["files"] == 4
    assert summary["loaded"] == 1 + 3 + 5 + 1
    assert summary["failed"] == 2
    assert summary["failures"] == str(failures)
    failed = [json.loads(line) for line in failures.read_text(encoding="utf-8").splitlines()]
    by_source = {Path(f["source"].split(":")[0].split("#")[0]).name + f["source"][len(f["source"].split(":")[0]):]
                 if "ndjson" in f["source"] else f["source"]: f for f in failed}
    assert len(failed) == 2
    bad_location = next(f for f in failed if "Location.ndjson.gz:3" in f["source"])
    assert bad_location["status"] in (400, 422)
    assert bad_location["outcome"]["resourceType"] == "OperationOutcome"
    assert "not-a-status" in json.dumps(bad_location["outcome"]) or bad_location["message"]
    assert any("batch.json" in f["source"] for f in failed), by_source
    settings = Settings(database=db, security_enabled=False, synchronous_full=False)
    for path in ("/Practitioner/single", "/Practitioner/c2", "/Location/l3", "/Practitioner/b1"):
        assert (await _read(settings, path)).status_code == 200, path
    named = (await _read(settings, "/Location?name=без")).json()
    assert len(named["entry"]) == 1  # the resource without an id was created with one of the server's


async def test_database_target_keeps_the_secure_default(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "dr.json").write_text(json.dumps(_practitioner("dr", "Сейткали")), encoding="utf-8")
    db, key = tmp_path / "db.sqlite", tmp_path / "dev-jwks.json"
    env = {"PATH": "/usr/bin:/bin", "KZFHIR_DEV_KEY_PATH": str(key), "KZFHIR_SYNCHRONOUS_FULL": "false"}
    refused = kzfhir("load", str(folder), "--database", str(db), "--json", "--failures", str(tmp_path / "f1"),
                     env=env)
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["failed"] == 1
    assert json.loads((tmp_path / "f1").read_text(encoding="utf-8"))["status"] == 401
    token = issue_dev_token("system", None, bin=BIN, key_path=key)
    loaded = kzfhir("load", str(folder), "--database", str(db), "--json", "--token", token, env=env)
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout)["loaded"] == 1
    settings = Settings(database=db, dev_key_path=key, synchronous_full=False)
    auth = {"Authorization": f"Bearer {token}"}
    assert (await _read(settings, "/Practitioner/dr", auth)).json()["name"][0]["family"] == "Сейткали"
    # the write went through the server's audit like any other
    admin = {"Authorization": f"Bearer {issue_dev_token('admin', None, key_path=key)}"}
    audit = (await _read(settings, "/AuditEvent?_count=50", admin)).json()
    assert any("Practitioner/dr" in json.dumps(e["resource"]) for e in audit.get("entry", []))


@pytest.mark.parametrize(("args", "message"), [
    (["load"], "name the files or folders to load"),
    (["load", "/nonexistent/folder"], "no such file or folder"),
    (["load", "README.md"], "not a .json, .ndjson or .jsonl file"),
    (["load", "tests/data/synthea-r4", "--base", "http://127.0.0.1:9", "--retries", "0"], "cannot reach"),
    (["load", "tests/data/synthea-r4", "--concurrency", "0"], "--concurrency"),
    (["load", "tests/data/synthea-r4", "--open"], "--open applies to --database only"),
])
def test_cli_errors_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    run = kzfhir(*args, cwd=Path(__file__).resolve().parents[2])
    assert run.returncode == 2
    assert run.stdout == ""
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert message in run.stderr
