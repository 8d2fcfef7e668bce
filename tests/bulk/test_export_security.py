"""Bulk export under the access policy: Consents with the action ``disclose`` decide what leaves the
server, every export is audited per patient, and only the client that started a job reaches it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.config import Settings
from fhir_server.security.auth import issue_dev_token
from tests.bulk.conftest import ASYNC, download, export, kick_off, put_all, serve, wait_done
from tests.bulk.seed import clinic, group
from tests.security_http.conftest import BIN, ORG_ACTOR, consent

OTHER_BIN = "990140004654"
pytestmark = pytest.mark.req("AC-12")


def _p2(resource: dict[str, Any]) -> dict[str, Any]:
    return {**resource, "patient": {"reference": "Patient/p2"}}


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database=tmp_path / "sec.sqlite", dev_key_path=tmp_path / "jwks.json", synchronous_full=False)
    async with serve(settings.model_copy(update={"security_enabled": False})) as seeding:
        await put_all(seeding, [
            *clinic(), group("g1", [("p1", False), ("p2", False)]),
            # p1 lets the organisation read and export; p2 only read. The Group is both patients' data
            # (R4 patient compartment: Group.member): its members' Consents decide who may see it.
            consent("cons-exp", ORG_ACTOR, actions=("access", "disclose")),
            _p2(consent("cons-read", ORG_ACTOR, actions=("access",))),  # p2 lets it read, not export
        ])
    async with serve(settings) as client:
        client.settings = settings  # type: ignore[attr-defined]
        yield client


@pytest.fixture
def token(server: httpx.AsyncClient) -> Callable[..., dict[str, str]]:
    def make(role: str, fhir_user: str | None = None, **kwargs: Any) -> dict[str, str]:
        key = server.settings.dev_key_path  # type: ignore[attr-defined]
        return {"Authorization": f"Bearer {issue_dev_token(role, fhir_user, key_path=key, **kwargs)}"}

    return make


def _ids(files: dict[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
    return {t: sorted(r["id"] for r in rs) for t, rs in files.items()}


@pytest.mark.req("AC-01")
async def test_system_client_exports_only_the_patients_whose_consent_permits_disclosure(server, token):
    system = token("system", bin=BIN)
    manifest = await export(server, "/Patient/$export", system)
    assert manifest["requiresAccessToken"] is True
    files = _ids(await download(server, manifest["output"], system))
    assert files == {"Condition": ["c1"], "Consent": ["cons-exp"], "Observation": ["o1", "o2"], "Patient": ["p1"]}
    errors = await download(server, manifest["error"], system)
    outcome = errors["OperationOutcome"][0]["issue"][0]
    assert outcome["code"] == "suppressed"
    # the note never counts what was withheld: that would reveal hidden data exists
    assert outcome["diagnostics"].startswith("resources the access policy does not let this client see")
    assert not any(ch.isdigit() for ch in outcome["diagnostics"])
    assert not any(name in outcome["diagnostics"] for name in ("p2", "p3", "o3", "c2", "cons-read"))


async def test_system_export_keeps_directory_data_and_drops_unconsented_patient_data(server, token):
    system = token("system", bin=BIN)
    manifest = await export(server, "/$export?_type=Practitioner,Observation", system)
    files = _ids(await download(server, manifest["output"], system))
    assert files == {"Observation": ["o-orphan", "o1", "o2"], "Practitioner": ["dr1"]}


async def test_group_export_under_the_policy_exports_permitted_members_only(server, token):
    system = token("system", bin=BIN)
    manifest = await export(server, "/Group/g1/$export?_type=Patient", system)
    assert _ids(await download(server, manifest["output"], system)) == {"Patient": ["p1"]}


@pytest.mark.req("AC-14")
@pytest.mark.req("AC-18")
async def test_export_is_audited_once_per_exported_patient_and_notified(server, token):
    await export(server, "/Patient/$export", token("system", bin=BIN))
    auditor = token("auditor", "Practitioner/dr1")

    async def export_events(patient: str) -> list[dict[str, Any]]:
        bundle = (await server.get(f"/AuditEvent?patient=Patient/{patient}&_count=100", headers=auditor)).json()
        return [e["resource"] for e in bundle.get("entry", [])
                if any("/Patient/$export" in (ent.get("description") or "") for ent in e["resource"]["entity"])]

    events = await export_events("p1")
    assert len(events) == 1
    assert events[0]["outcome"] == "0" and events[0]["subtype"][0]["code"] == "operation"
    assert {"reference": "Consent/cons-exp"} in [ent.get("what") for ent in events[0]["entity"]]
    assert await export_events("p2") == []
    notices = await server.app.state.services.store.outbox_partition("notification", "Patient/p1", 10)
    assert notices


@pytest.mark.req("AC-02")
async def test_break_glass_does_not_cover_bulk_export(server, token):
    headers = token("practitioner", "Practitioner/dr1", break_glass="mass casualty")
    r = await server.get("/Patient/$export", headers={**ASYNC, **headers})
    assert r.status_code == 403
    assert "break-glass" in r.json()["issue"][0]["diagnostics"]


@pytest.mark.req("AC-11")
@pytest.mark.parametrize(
    ("role", "kwargs"),
    [("legal-exception", {"extra_claims": {"legal_basis": "court order 2-55/2025"}}), ("auditor", {}), ("admin", {})],
)
async def test_roles_without_export_rights_are_refused(server, token, role, kwargs):
    r = await server.get("/$export", headers={**ASYNC, **token(role, "Practitioner/dr1", **kwargs)})
    assert r.status_code == 403


async def test_scopes_without_search_permission_cannot_export(server, token):
    r = await server.get("/$export?_type=Observation",
                         headers={**ASYNC, **token("system", bin=BIN, scopes=["system/Observation.r"])})
    assert r.status_code == 403


async def test_another_client_cannot_poll_download_or_cancel_the_job(server, token):
    owner = token("system", bin=BIN)
    status_url = await kick_off(server, "/Patient/$export", owner)
    manifest = (await wait_done(server, status_url, owner)).json()
    file_url = manifest["output"][0]["url"]
    for other in (token("system", bin=OTHER_BIN), token("practitioner", "Practitioner/dr1")):
        assert (await server.get(status_url, headers=other)).status_code == 403
        assert (await server.get(file_url, headers=other)).status_code == 403
        assert (await server.delete(status_url, headers=other)).status_code == 403
    assert (await server.get(file_url)).status_code == 401  # requiresAccessToken
    assert (await server.get(status_url, headers=owner)).status_code == 200
    assert (await server.get(file_url, headers=owner)).status_code == 200
