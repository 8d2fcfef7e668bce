"""``$import`` under the access policy (security on): every line is a write of the importing client, judged
and audited by the write executor like a ``PUT``/``POST``; what the client may not write is refused and
listed in the error file, never stored; only the client that started a job reaches it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from fhir_server.config import Settings
from fhir_server.security.auth import issue_dev_token
from tests.bulk.conftest import put_all, serve
from tests.bulk.seed import observation, patient
from tests.bulk.test_import import ASYNC, NDJSON, counts, errors_of, finish, imported, ndjson, start
from tests.security_http.conftest import BIN, ORG_ACTOR, consent

pytestmark = pytest.mark.req("AC-12")
OTHER_BIN = "990140004654"


def _without_id(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k != "id"}


@asynccontextmanager
async def _server(tmp_path: Path, **update: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database=tmp_path / "sec.sqlite", dev_key_path=tmp_path / "jwks.json", synchronous_full=False,
                        import_chunk_size=8, **update)
    async with serve(settings.model_copy(update={"security_enabled": False})) as seeding:
        # p1 lets the organisation (its BIN) read, add to and correct its record; p2 has no Consent
        await put_all(seeding, [patient("p1", "Ахметова"), patient("p2", "Садыкова"),
                                consent("cons-1", ORG_ACTOR, actions=("access", "collect", "correct"))])
    async with serve(settings) as client:
        client.settings = settings  # type: ignore[attr-defined]
        yield client


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with _server(tmp_path) as client:
        yield client


@pytest.fixture
def token(server: httpx.AsyncClient) -> Callable[..., dict[str, str]]:
    def make(role: str, fhir_user: str | None = None, **kwargs: Any) -> dict[str, str]:
        key = server.settings.dev_key_path  # type: ignore[attr-defined]
        return {"Authorization": f"Bearer {issue_dev_token(role, fhir_user, key_path=key, **kwargs)}"}

    return make


@pytest.mark.req("AC-01")
async def test_system_client_imports_what_it_may_write_and_the_rest_is_refused_and_reported(server, token):
    system = token("system", bin=BIN)
    lines = [
        {"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "Иванов"}]},  # directory: with its id
        _without_id(observation("x", "p1")),  # p1's Consent covers the organisation
        _without_id(observation("y", "p2")),  # p2 has none: refused
        _without_id(observation("z", "p1", "90")),
    ]
    manifest = await imported(server, body=ndjson(lines), headers=system)
    assert manifest["requiresAccessToken"] is True
    assert counts(manifest) == {"Observation": 2, "Practitioner": 1}
    outcomes = await errors_of(server, manifest, system)
    assert len(outcomes) == 1
    issue = outcomes[0]["issue"][0]
    assert issue["location"] == ["Line[3]"] and issue["code"] == "forbidden"
    bundle = (await server.get("/Observation?subject=Patient/p1", headers=system)).json()
    assert sorted(e["resource"]["valueQuantity"]["value"] for e in bundle["entry"]) == [72.5, 90]
    # nothing of p2 was stored, whoever asks
    admin = (await server.get("/Observation?subject=Patient/p2", headers=token("system", bin=BIN))).json()
    assert admin.get("entry", []) == []


@pytest.mark.req("AC-14")
async def test_imported_writes_and_refusals_are_audited(server, token):
    system = token("system", bin=BIN)
    await imported(server, body=ndjson([_without_id(observation("x", "p1")), _without_id(observation("y", "p2"))]),
                   headers=system)
    auditor = token("auditor", "Practitioner/dr1")

    async def events(pid: str) -> list[dict[str, Any]]:
        bundle = (await server.get(f"/AuditEvent?patient=Patient/{pid}&_count=100", headers=auditor)).json()
        return [e["resource"] for e in bundle.get("entry", [])]

    created = [e for e in await events("p1") if e["action"] == "C" and e["outcome"] == "0"]
    assert len(created) == 1
    refused = [e for e in await events("p2") if e["outcome"] != "0"]
    assert len(refused) == 1  # once, although the refused line was in a unit that was split and retried


async def test_patient_data_with_a_client_chosen_id_follows_update_as_create(server, token, tmp_path):
    system = token("system", bin=BIN)
    manifest = await imported(server, body=ndjson([observation("o-kept", "p1")]), headers=system)
    assert counts(manifest) == {}
    issue = (await errors_of(server, manifest, system))[0]["issue"][0]
    assert "client-chosen id" in issue["diagnostics"]  # 405 of PUT under KZFHIR_UPDATE_AS_CREATE=directory


async def test_with_update_as_create_all_patient_data_keeps_its_ids(tmp_path):
    async with _server(tmp_path, update_as_create="all") as client:
        key = client.settings.dev_key_path  # type: ignore[attr-defined]
        system = {"Authorization": f"Bearer {issue_dev_token('system', None, key_path=key, bin=BIN)}"}
        manifest = await imported(client, body=ndjson([observation("o-kept", "p1"), observation("o-p2", "p2")]),
                                  headers=system)
        assert counts(manifest) == {"Observation": 1}
        assert (await client.get("/Observation/o-kept", headers=system)).status_code == 200
        assert (await errors_of(client, manifest, system))[0]["issue"][0]["location"] == ["Line[2]"]


@pytest.mark.req("AC-11")
@pytest.mark.parametrize("role", ["auditor", "admin"])
async def test_roles_without_write_rights_to_clinical_data_are_refused(server, token, role):
    headers = token(role, "Practitioner/dr1")
    r = await server.post("/$import", content=ndjson([_without_id(observation("x", "p1"))]),
                          headers={**NDJSON, **headers})
    assert r.status_code == 403  # the operation's gate: oversight roles change no clinical data (AC-11)
    assert (await server.get("/Observation?subject=Patient/p1", headers=token("system", bin=BIN))).json().get(
        "entry", []) == []


async def test_a_typed_input_the_client_may_not_write_is_refused_at_kick_off(server, token):
    headers = token("auditor", "Practitioner/dr1")
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "input", "part": [{"name": "type", "valueCode": "Observation"},
                                   {"name": "url", "valueUri": "Observation.ndjson"}]}]}
    r = await server.post("/$import", content=orjson.dumps(body),
                          headers={**ASYNC, **headers, "Content-Type": "application/fhir+json"})
    assert r.status_code == 403


async def test_scopes_without_write_permission_are_refused_at_kick_off(server, token):
    headers = token("system", bin=BIN, scopes=["system/Observation.rs"])
    r = await server.post("/$import", content=ndjson([_without_id(observation("x", "p1"))]),
                          headers={**NDJSON, **headers})
    assert r.status_code == 403
    assert "scopes" in r.json()["issue"][0]["diagnostics"]


async def test_another_client_cannot_see_poll_download_or_cancel_the_job(server, token):
    owner = token("system", bin=BIN)
    status_url = await start(server, body=ndjson([_without_id(observation("y", "p2"))]), headers=owner)
    manifest = (await finish(server, status_url, owner)).json()
    file_url = manifest["error"][0]["url"]
    for other in (token("system", bin=OTHER_BIN), token("practitioner", "Practitioner/dr1")):
        assert (await server.get(status_url, headers=other)).status_code == 404
        assert (await server.get(file_url, headers=other)).status_code == 404
        assert (await server.delete(status_url, headers=other)).status_code == 404
    assert (await server.get(status_url)).status_code == 401
    assert (await server.get(file_url)).status_code == 401
    assert (await server.get(status_url, headers=owner)).status_code == 200
    assert (await server.get(file_url, headers=owner)).status_code == 200
