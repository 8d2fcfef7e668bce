"""Every Synthea bundle posts as a transaction: 200, each entry 201, every reference resolves."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from tests.data import load_gz, synthea_bundles

# FHIR semantics, not access: the server runs in open mode (security: tests/security_http/).
pytestmark = pytest.mark.open_mode

FHIR_JSON = {"content-type": "application/fhir+json"}


def _references(node: Any, out: list[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str):
            out.append(ref)
        for value in node.values():
            _references(value, out)
    elif isinstance(node, list):
        for item in node:
            _references(item, out)


@pytest.mark.slow
async def test_all_synthea_bundles_load_and_references_resolve(client):
    bundles = synthea_bundles()
    assert len(bundles) == 75
    stored: dict[str, dict[str, Any]] = {}
    expected_entries = 0
    sem = asyncio.Semaphore(4)

    async def post(path):
        nonlocal expected_entries
        bundle = load_gz(path)
        expected_entries += len(bundle["entry"])
        async with sem:
            r = await client.post("/", json=bundle, headers=FHIR_JSON)
        assert r.status_code == 200, f"{path.name}: {r.text[:400]}"
        for e in r.json()["entry"]:
            assert e["response"]["status"] == "201 Created"
            res = e["resource"]
            stored[f"{res['resourceType']}/{res['id']}"] = res

    await asyncio.gather(*(post(p) for p in bundles))
    assert len(stored) == expected_entries
    refs: list[str] = []
    for res in stored.values():
        own: list[str] = []
        _references(res, own)
        contained = {f"#{c['id']}" for c in res.get("contained", [])}
        # a '#id' reference points into the resource's own contained resources
        assert [r for r in own if r.startswith("#") and r not in contained] == []
        refs += [r for r in own if not r.startswith("#")]
    assert refs
    unresolved = [r for r in refs if r not in stored]
    assert unresolved == []
    for ref in random.Random(7).sample(refs, 200):
        assert (await client.get(f"/{ref}")).status_code == 200
