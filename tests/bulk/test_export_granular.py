"""Bulk export under SMART v2 granular scopes (issue 16): ``system/Observation.rs?category=vital-signs``
exports the vital signs the Consents let out, and nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.config import Settings
from fhir_server.security.auth import issue_dev_token
from tests.bulk.conftest import download, export, put_all, serve
from tests.bulk.seed import clinic
from tests.security_http.conftest import BIN, ORG_ACTOR, consent

pytestmark = [pytest.mark.req("AC-12"), pytest.mark.req("TM-04")]
CAT = "http://terminology.hl7.org/CodeSystem/observation-category"


def categorised(oid: str, category: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "category": [{"coding": [{"system": CAT, "code": category}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient/p1"}}


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database=tmp_path / "sec.sqlite", dev_key_path=tmp_path / "jwks.json", synchronous_full=False)
    async with serve(settings.model_copy(update={"security_enabled": False})) as seeding:
        await put_all(seeding, [*clinic(), categorised("ov", "vital-signs"), categorised("ol", "laboratory"),
                                consent("cons-exp", ORG_ACTOR, actions=("access", "disclose"))])
    async with serve(settings) as client:
        client.settings = settings  # type: ignore[attr-defined]
        yield client


async def test_export_holds_only_resources_matching_the_granular_scope(server):
    key = server.settings.dev_key_path  # type: ignore[attr-defined]
    scopes = [f"system/Observation.rs?category={CAT}|vital-signs", "system/Patient.rs"]
    system = {"Authorization": f"Bearer {issue_dev_token('system', None, scopes, bin=BIN, key_path=key)}"}
    manifest = await export(server, "/Patient/$export?_type=Observation,Patient", system)
    files = await download(server, manifest["output"], system)
    assert sorted(r["id"] for r in files["Observation"]) == ["ov"]
    assert sorted(r["id"] for r in files["Patient"]) == ["p1"]
