"""Hypothesis: random create/update/delete sequences keep read, vread and history consistent."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_server.api.app import create_app
from fhir_server.config import Settings

FHIR_JSON = {"content-type": "application/fhir+json"}
IDS = ["a", "b", "c"]

ops = st.lists(
    st.tuples(st.sampled_from(["put", "delete", "patch"]), st.sampled_from(IDS),
              st.sampled_from(["male", "female", "other", "unknown"])),
    min_size=1, max_size=15,
)


async def _run(sequence: list[tuple[str, str, str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(database=Path(tmp) / "p.sqlite", synchronous_full=False, security_enabled=False))
        async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            model: dict[str, list[dict[str, Any] | None]] = {i: [] for i in IDS}
            baseline = (await c.get("/_history?_count=0")).json()["total"]  # published conformance resources
            for op, rid, gender in sequence:
                await _apply(c, model, op, rid, gender)
            await _check(c, model, baseline)


async def _apply(c: httpx.AsyncClient, model: dict[str, list[Any]], op: str, rid: str, gender: str) -> None:
    versions = model[rid]
    alive = bool(versions) and versions[-1] is not None
    if op == "put":
        r = await c.put(f"/Patient/{rid}", json={"resourceType": "Patient", "id": rid, "gender": gender},
                        headers=FHIR_JSON)
        assert r.status_code == (200 if alive else 201)
        versions.append({"gender": gender})
    elif op == "delete":
        r = await c.delete(f"/Patient/{rid}")
        assert r.status_code == 204
        if alive:
            versions.append(None)
    else:
        patch = [{"op": "replace", "path": "/gender", "value": gender}]
        r = await c.patch(f"/Patient/{rid}", json=patch, headers={"content-type": "application/json-patch+json"})
        if alive:
            assert r.status_code == 200
            versions.append({"gender": gender})
        else:
            assert r.status_code == (410 if versions else 404)


async def _check(c: httpx.AsyncClient, model: dict[str, list[Any]], baseline: int) -> None:
    total = 0
    for rid, versions in model.items():
        total += len(versions)
        r = await c.get(f"/Patient/{rid}")
        if not versions:
            assert r.status_code == 404
            continue
        assert r.status_code == (410 if versions[-1] is None else 200)
        hist = (await c.get(f"/Patient/{rid}/_history?_count=100")).json()
        assert [int(e["response"]["etag"][3:-1]) for e in hist["entry"]] == list(range(len(versions), 0, -1))
        for n, content in enumerate(versions, start=1):
            v = await c.get(f"/Patient/{rid}/_history/{n}")
            if content is None:
                assert v.status_code == 410
            else:
                assert v.status_code == 200 and v.json()["gender"] == content["gender"]
                assert v.json()["meta"]["versionId"] == str(n)
    system = (await c.get("/_history?_count=1000")).json()
    assert system["total"] == baseline + total


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_random_write_sequences_keep_versions_consistent(sequence):
    asyncio.run(_run(sequence))
