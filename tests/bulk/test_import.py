"""Bulk Data ``$import`` over real HTTP: the request shapes, counts per type, refused lines with their line
numbers, the import folder's boundaries, limits, cancellation and restarts (docs/bulk-import.md).

FHIR semantics of the job, not access: the server runs in open mode here (the policy: test_import_security.py).
"""

from __future__ import annotations

import asyncio
import gzip
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from fhir_server.config import Settings
from fhir_server.operations import import_operation, import_runner
from fhir_server.operations.import_jobs import IN_PROGRESS, KIND, imports_root
from tests.bulk.conftest import serve
from tests.bulk.seed import clinic

pytestmark = pytest.mark.open_mode

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
NDJSON = {**ASYNC, "Content-Type": "application/fhir+ndjson"}
FHIR_JSON = {**ASYNC, "Content-Type": "application/fhir+json"}


def ndjson(resources: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in resources)


def by_type(resources: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in resources:
        out[r["resourceType"]] = out.get(r["resourceType"], 0) + 1
    return out


def parameters(*inputs: tuple[str | None, str], source: str | None = None) -> dict[str, Any]:
    """The HAPI-style Parameters form of a kick-off."""
    params: list[dict[str, Any]] = [{"name": "inputFormat", "valueCode": "application/fhir+ndjson"}]
    if source:
        params.append({"name": "inputSource", "valueUri": source})
    for rtype, url in inputs:
        parts: list[dict[str, Any]] = [{"name": "url", "valueUri": url}]
        if rtype:
            parts.insert(0, {"name": "type", "valueCode": rtype})
        params.append({"name": "input", "part": parts})
    return {"resourceType": "Parameters", "parameter": params}


async def start(client: httpx.AsyncClient, *, body: bytes | None = None, json: dict[str, Any] | None = None,
                headers: dict[str, str] | None = None) -> str:
    if body is not None:
        r = await client.post("/$import", content=body, headers={**NDJSON, **(headers or {})})
    else:
        r = await client.post("/$import", content=orjson.dumps(json), headers={**FHIR_JSON, **(headers or {})})
    assert r.status_code == 202, r.text
    return str(r.headers["content-location"])


async def finish(client: httpx.AsyncClient, status_url: str, headers: dict[str, str] | None = None,
                 timeout: float = 60.0) -> httpx.Response:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        r = await client.get(status_url, headers=headers or {})
        if r.status_code != 202:
            return r
        assert r.headers.get("x-progress") and len(r.headers["x-progress"]) < 100
        assert asyncio.get_running_loop().time() < deadline, "import did not finish in time"
        await asyncio.sleep(0.02)


async def imported(client: httpx.AsyncClient, headers: dict[str, str] | None = None, **kwargs: Any
                   ) -> dict[str, Any]:
    r = await finish(client, await start(client, headers=headers, **kwargs), headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    manifest: dict[str, Any] = r.json()
    return manifest


async def errors_of(client: httpx.AsyncClient, manifest: dict[str, Any], headers: dict[str, str] | None = None
                    ) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for entry in manifest["error"]:
        r = await client.get(entry["url"], headers=headers or {})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/fhir+ndjson")
        found = [orjson.loads(line) for line in r.content.splitlines()]
        assert len(found) == entry["count"]
        out += found
    return out


def counts(manifest: dict[str, Any]) -> dict[str, int]:
    result: dict[str, int] = manifest["extension"]["https://fhir.kzfhir.kz/StructureDefinition/bulk-import-counts"]
    return result


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "import-root"
    folder.mkdir()
    return folder


@pytest.fixture
async def server(settings: Settings, root: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings.model_copy(update={"import_root": root, "import_chunk_size": 4})) as client:
        yield client


async def test_posted_ndjson_is_imported_with_counts_per_type(server):
    data = clinic()
    manifest = await imported(server, body=ndjson(data))
    assert counts(manifest) == by_type(data)
    assert manifest["output"] == [{"type": "OperationOutcome", "inputUrl": "request-body", "count": len(data)}]
    assert manifest["error"] == []
    assert manifest["request"].endswith("/$import") and manifest["transactionTime"]
    r = await server.get("/Observation/o2")
    assert r.status_code == 200
    assert r.json()["valueQuantity"]["value"] == 80
    # indexed: a search by patient finds the imported observations; history holds the version
    bundle = (await server.get("/Observation?subject=Patient/p1")).json()
    assert sorted(e["resource"]["id"] for e in bundle["entry"]) == ["o1", "o2"]
    assert (await server.get("/Patient/p1/_history")).json()["total"] == 1


async def test_a_second_import_updates_the_same_resources(server):
    data = clinic()
    await imported(server, body=ndjson(data))
    changed = [{**data[0], "gender": "male"}]
    manifest = await imported(server, body=ndjson(changed))
    assert counts(manifest) == {"Patient": 1}
    r = await server.get("/Patient/p1")
    assert r.json()["gender"] == "male" and r.json()["meta"]["versionId"] == "2"


async def test_invalid_lines_are_reported_with_their_line_numbers(server):
    good = clinic()[:3]
    lines = [
        orjson.dumps(good[0]),
        b"{not json",
        orjson.dumps({"resourceType": "Observation", "id": "bad-status", "status": "done",
                      "code": {"text": "x"}}),
        b"",  # blank lines are skipped but counted
        orjson.dumps({"resourceType": "NoSuchType", "id": "x"}),
        orjson.dumps(good[1]),
        orjson.dumps({"resourceType": "Patient", "id": "bad id!"}),
        orjson.dumps(good[2]),
    ]
    manifest = await imported(server, body=b"\n".join(lines) + b"\n")
    assert counts(manifest) == {"Patient": 3}
    assert manifest["output"][0]["count"] == 3
    outcomes = await errors_of(server, manifest)
    located = {o["issue"][0]["location"][0]: o for o in outcomes}
    assert sorted(located) == ["Line[2]", "Line[3]", "Line[5]", "Line[7]"]
    status_issue = next(i for i in located["Line[3]"]["issue"] if i.get("expression"))
    assert status_issue["expression"] == ["Observation.status"]
    assert located["Line[3]"]["issue"][0]["diagnostics"].startswith("request-body line 3: ")
    assert "NoSuchType" in located["Line[5]"]["issue"][0]["diagnostics"]
    assert (await server.get("/Observation/bad-status")).status_code == 404


async def test_folder_import_with_parameters_and_the_json_manifest(server, root):
    data = clinic()
    (root / "set").mkdir()
    patients = [r for r in data if r["resourceType"] == "Patient"]
    rest = [r for r in data if r["resourceType"] != "Patient"]
    (root / "set" / "Patient.ndjson").write_bytes(ndjson(patients))
    with gzip.open(root / "set" / "Other.ndjson.gz", "wb") as fh:
        fh.write(ndjson(rest))
    manifest = await imported(server, json=parameters(("Patient", "set/Patient.ndjson"), (None, "set"),
                                                      source="https://mis.example.kz"))
    # the folder input holds Patient.ndjson too: its three patients are imported again (updated)
    assert [o["count"] for o in manifest["output"]] == [3, len(data)]
    assert counts(manifest) == {**by_type(data), "Patient": 6}
    assert (await server.get("/Patient/p2")).json()["meta"]["source"] == "https://mis.example.kz"
    r = await server.post("/$import", content=orjson.dumps({
        "inputFormat": "application/fhir+ndjson", "inputSource": "https://mis.example.kz",
        "input": [{"type": "Patient", "url": f"file://{root}/set/Patient.ndjson"}]}),
        headers={**ASYNC, "Content-Type": "application/json"})
    assert r.status_code == 202, r.text
    assert (await finish(server, r.headers["content-location"])).status_code == 200


async def test_lines_of_another_type_than_the_input_says_are_refused(server, root):
    (root / "Patient.ndjson").write_bytes(ndjson(clinic()[2:5]))  # p3, dr1, o1
    manifest = await imported(server, json=parameters(("Patient", "Patient.ndjson")))
    assert counts(manifest) == {"Patient": 1}
    outcomes = await errors_of(server, manifest)
    assert [o["issue"][0]["location"] for o in outcomes] == [["Line[2]"], ["Line[3]"]]
    assert all("in a file of Patient resources" in o["issue"][0]["diagnostics"] for o in outcomes)


@pytest.mark.parametrize("url", ["../outside.ndjson", "set/../../outside.ndjson", "/etc/passwd",
                                 "file:///etc/passwd", "escape.ndjson", "linked/outside.ndjson",
                                 "https://example.org/Patient.ndjson"])
async def test_paths_outside_the_import_folder_are_refused(server, root, tmp_path, url):
    outside = tmp_path / "outside.ndjson"
    outside.write_bytes(ndjson(clinic()[:1]))
    (root / "set").mkdir()
    (root / "escape.ndjson").symlink_to(outside)
    (root / "linked").symlink_to(tmp_path)
    r = await server.post("/$import", content=orjson.dumps(parameters(("Patient", url))), headers=FHIR_JSON)
    assert r.status_code in (400, 403), r.text
    issue = r.json()["issue"][0]
    assert issue["code"] in ("security", "not-supported")
    assert issue["expression"] == ["input[0].url"]
    assert (await server.get("/Patient/p1")).status_code == 404


async def test_a_folder_with_a_link_out_of_the_root_is_refused(server, root, tmp_path):
    outside = tmp_path / "outside.ndjson"
    outside.write_bytes(ndjson(clinic()[:1]))
    (root / "set").mkdir()
    (root / "set" / "Patient.ndjson").symlink_to(outside)
    r = await server.post("/$import", content=orjson.dumps(parameters((None, "set"))), headers=FHIR_JSON)
    assert r.status_code == 403
    assert r.json()["issue"][0]["code"] == "security"


async def test_folder_imports_are_refused_without_an_import_root(settings):
    async with serve(settings) as client:
        r = await client.post("/$import", content=orjson.dumps(parameters(("Patient", "x.ndjson"))),
                              headers=FHIR_JSON)
        assert r.status_code == 400
        assert "import_root" in r.json()["issue"][0]["diagnostics"]


async def test_kick_off_rules(server):
    r = await server.post("/$import", content=ndjson(clinic()), headers={"Content-Type": "application/fhir+ndjson"})
    assert r.status_code == 400 and r.json()["issue"][0]["expression"] == ["Prefer"]
    bad_format = parameters(("Patient", "x.ndjson"))
    bad_format["parameter"][0]["valueCode"] = "text/csv"
    r = await server.post("/$import", content=orjson.dumps(bad_format), headers=FHIR_JSON)
    assert r.status_code == 400 and r.json()["issue"][0]["code"] == "not-supported"
    r = await server.post("/$import", content=orjson.dumps({"resourceType": "Parameters", "parameter": []}),
                          headers=FHIR_JSON)
    assert r.status_code == 400
    r = await server.post("/$import", content=orjson.dumps(parameters(("Nope", "x.ndjson"))), headers=FHIR_JSON)
    assert r.status_code == 400 and r.json()["issue"][0]["expression"] == ["Parameters.parameter[1].type"]
    r = await server.post("/$import", content=b"", headers=NDJSON)
    assert r.status_code == 400
    assert not [p for p in imports_root(server.app.state.services.settings.database).glob("upload-*")]


async def test_limits_give_clear_outcomes(settings, root):
    data = clinic()
    (root / "big.ndjson").write_bytes(ndjson(data))
    limited = settings.model_copy(update={"import_root": root, "import_max_file_bytes": 100,
                                          "import_max_line_bytes": 400, "import_max_resources": 5})
    async with serve(limited) as client:
        r = await client.post("/$import", content=orjson.dumps(parameters((None, "big.ndjson"))), headers=FHIR_JSON)
        assert r.status_code == 413 and r.json()["issue"][0]["code"] == "too-costly"
        r = await client.post("/$import", content=ndjson(data), headers=NDJSON)
        assert r.status_code == 413
    async with serve(limited.model_copy(update={"import_max_file_bytes": 1 << 20})) as client:
        long_line = {**data[0], "id": "long", "name": [{"family": "x" * 500}]}
        manifest = await imported(client, body=ndjson([long_line, *data]))
        assert manifest["output"][0]["count"] == 4  # 5 lines read: the long one refused, 4 imported
        outcomes = await errors_of(client, manifest)
        assert outcomes[0]["issue"][0]["location"] == ["Line[1]"]
        assert "import_max_line_bytes" in outcomes[0]["issue"][0]["diagnostics"]
        assert outcomes[1]["issue"][0]["location"] == ["Line[6]"]
        assert "import_max_resources" in outcomes[1]["issue"][0]["diagnostics"]


@pytest.fixture
def stalled(monkeypatch):
    """Imports that stop before their first write unit until the test releases them."""
    release = asyncio.Event()
    original = import_runner.write_chunk

    async def write_chunk(base, lines):
        await release.wait()
        return await original(base, lines)

    monkeypatch.setattr(import_runner, "write_chunk", write_chunk)
    return release


async def test_status_reports_progress_and_delete_cancels(server, stalled):
    status_url = await start(server, body=ndjson(clinic()))
    job_id = status_url.rsplit("/", 1)[1]
    r = await server.get(status_url)
    assert r.status_code == 202 and "imported" in r.headers["x-progress"]
    folder = imports_root(server.app.state.services.settings.database) / job_id
    assert folder.is_dir()
    r = await server.delete(status_url)
    assert r.status_code == 202
    assert (await server.get(status_url)).status_code == 404
    assert not folder.exists()
    assert job_id not in import_operation._RUNNING
    assert (await server.get("/Patient/p1")).status_code == 404  # nothing was written before the cancel


async def test_an_import_interrupted_by_a_restart_is_reported_failed(settings, root, stalled):
    store_settings = settings.model_copy(update={"import_root": root})
    async with serve(store_settings) as client:
        status_url = await start(client, body=ndjson(clinic()))
        assert (await client.get(status_url)).status_code == 202
        # the process dies: its task is gone without a word, the job stays in-progress in the store
        job_id = status_url.rsplit("/", 1)[1]
        running = import_operation._RUNNING.pop(job_id)
        running.task.cancel()
        await asyncio.gather(running.task, return_exceptions=True)
        assert [j for j, _ in await client.app.state.services.store.list_jobs(KIND, IN_PROGRESS)] == [job_id]
    stalled.set()
    async with serve(store_settings) as client:  # the next start marks it failed
        r = await client.get(status_url)
        assert r.status_code == 500
        text = r.json()["issue"][0]["diagnostics"]
        assert "restarted" in text and "not resumed" in text


async def test_unknown_jobs_and_files_are_404(server):
    assert (await server.get("/$import-status/" + "0" * 32)).status_code == 404
    assert (await server.delete("/$import-status/not-a-job")).status_code == 404
    manifest = await imported(server, body=b"{oops\n")
    url = manifest["error"][0]["url"]
    assert (await server.get(url)).status_code == 200
    for name in ("errors.2.ndjson", "..%2F..%2Ftest.sqlite", "posted.ndjson"):
        assert (await server.get(url.rsplit("/", 1)[0] + "/" + name)).status_code == 404


async def test_posted_files_and_error_files_are_private(server, stalled):
    status_url = await start(server, body=ndjson(clinic()))
    folder = imports_root(server.app.state.services.settings.database) / status_url.rsplit("/", 1)[1]
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert oct(os.stat(folder / "posted.ndjson").st_mode & 0o777) == "0o600"
    stalled.set()
    assert (await finish(server, status_url)).status_code == 200


def test_files_of_a_postgresql_store_go_under_data_not_into_a_folder_named_after_the_url(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert imports_root("postgresql://kzfhir@db.example.kz:5432/kzfhir") == tmp_path / "data" / "imports"
    assert imports_root(tmp_path / "store" / "kzfhir.sqlite") == tmp_path / "store" / "imports"
