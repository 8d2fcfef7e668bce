"""Kick-off rules, polling, cancellation, failures and restarts of bulk export jobs."""

from __future__ import annotations

import asyncio

import pytest

from fhir_server.backends import is_postgres
from fhir_server.operations import export as export_module
from fhir_server.operations import export_runner
from fhir_server.operations.export_jobs import jobs_root
from tests.bulk.conftest import ASYNC, download, export, kick_off, put_all, serve, wait_done
from tests.bulk.seed import clinic

# FHIR semantics, not access: the server runs in open mode (security: tests/security_http/).
pytestmark = pytest.mark.open_mode


@pytest.fixture
def stalled(monkeypatch):
    """Exports that never get past their first read (until the test releases them)."""
    release = asyncio.Event()

    async def pages(store, job):
        await release.wait()
        if False:  # an async generator that yields nothing
            yield []

    monkeypatch.setattr(export_runner, "pages", pages)
    return release


def _job_id(status_url: str) -> str:
    return status_url.rsplit("/", 1)[1]


async def test_kick_off_without_prefer_respond_async_is_400(open_server):
    r = await open_server.get("/$export")
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["Prefer"]
    r = await open_server.get("/$export", headers={"Prefer": "return=minimal"})
    assert r.status_code == 400


async def test_unknown_jobs_and_files_are_404(open_server):
    assert (await open_server.get("/$export-status/" + "0" * 32)).status_code == 404
    assert (await open_server.delete("/$export-status/" + "0" * 32)).status_code == 404
    assert (await open_server.get("/$export-status/not-a-job")).status_code == 404
    assert (await open_server.get(f"/$export-file/{'0' * 32}/Patient.1.ndjson")).status_code == 404


async def test_files_not_in_the_manifest_are_404(open_server):
    await put_all(open_server, clinic())
    manifest = await export(open_server, "/$export?_type=Patient")
    job_url = manifest["output"][0]["url"].rsplit("/", 1)[0]
    for name in ("Observation.1.ndjson", "..%2F..%2Ftest.sqlite", "Patient.1.ndjson.tmp"):
        assert (await open_server.get(f"{job_url}/{name}")).status_code == 404


async def test_status_reports_progress_while_the_export_runs(open_server, stalled):
    status_url = await kick_off(open_server, "/$export")
    r = await open_server.get(status_url)
    assert r.status_code == 202
    assert "resources written" in r.headers["x-progress"]
    stalled.set()
    assert (await wait_done(open_server, status_url)).status_code == 200


async def test_delete_cancels_a_running_export_and_forgets_it(open_server, stalled):
    status_url = await kick_off(open_server, "/$export")
    folder = jobs_root(open_server.app.state.services.settings.database) / _job_id(status_url)
    assert (await open_server.get(status_url)).status_code == 202
    assert folder.is_dir()
    assert (await open_server.delete(status_url)).status_code == 202
    assert (await open_server.get(status_url)).status_code == 404
    assert not folder.exists()
    assert _job_id(status_url) not in export_module._RUNNING


async def test_delete_of_a_completed_export_removes_its_files(open_server):
    await put_all(open_server, clinic())
    status_url = await kick_off(open_server, "/$export?_type=Patient")
    manifest = (await wait_done(open_server, status_url)).json()
    assert (await open_server.get(manifest["output"][0]["url"])).status_code == 200
    assert (await open_server.delete(status_url)).status_code == 202
    assert (await open_server.get(manifest["output"][0]["url"])).status_code == 404
    assert (await open_server.get(status_url)).status_code == 404


async def test_a_failing_export_reports_500_with_the_reason(open_server, monkeypatch):
    async def broken(store, job):
        raise OSError("disk full")
        yield []

    monkeypatch.setattr(export_runner, "pages", broken)
    status_url = await kick_off(open_server, "/$export")
    r = await wait_done(open_server, status_url)
    assert r.status_code == 500
    assert "disk full" in r.json()["issue"][0]["diagnostics"]


async def test_too_many_running_exports_get_429(open_server, stalled, monkeypatch):
    monkeypatch.setenv("KZFHIR_EXPORT_MAX_RUNNING_JOBS", "1")
    status_url = await kick_off(open_server, "/$export")
    r = await open_server.get("/$export", headers=ASYNC)
    assert r.status_code == 429
    assert r.headers["retry-after"]
    stalled.set()
    assert (await wait_done(open_server, status_url)).status_code == 200
    again = await kick_off(open_server, "/$export")  # a slot is free again
    assert (await wait_done(open_server, again)).status_code == 200


async def test_restart_marks_an_export_that_was_running_failed(settings, stalled):
    async with serve(settings) as client:
        status_url = await kick_off(client, "/$export")
        job_id = _job_id(status_url)
        # The process "dies": its task is gone without a word to the store (no orderly shutdown).
        running = export_module._RUNNING.pop(job_id)
        running.task.cancel()
        await asyncio.gather(running.task, return_exceptions=True)
    async with serve(settings) as client:
        r = await client.get(status_url)
        if is_postgres(settings.database):  # jobs are leased there: this process's own lease, so it resumes
            assert r.status_code == 202 and r.headers["x-progress"] == "resumed"
            stalled.set()
            assert (await wait_done(client, status_url)).status_code == 200
            return
        assert r.status_code == 500
        assert "restarted" in r.json()["issue"][0]["diagnostics"]
        assert not (jobs_root(settings.database) / job_id).exists()


async def test_shutdown_marks_running_exports_failed(settings, stalled):
    async with serve(settings) as client:
        status_url = await kick_off(client, "/$export")
        services = client.app.state.services
        assert await export_module.stop_exports(services.store, services.settings) == 1
        r = await client.get(status_url)
        assert r.status_code == 500
        assert "shut down" in r.json()["issue"][0]["diagnostics"]


async def test_completed_exports_survive_a_restart(settings):
    async with serve(settings) as client:
        await put_all(client, clinic())
        status_url = await kick_off(client, "/$export?_type=Condition")
        first = (await wait_done(client, status_url)).json()
    async with serve(settings) as client:
        r = await client.get(status_url)
        assert r.status_code == 200
        assert r.json() == first
        files = await download(client, first["output"])
        assert sorted(c["id"] for c in files["Condition"]) == ["c1", "c2"]
