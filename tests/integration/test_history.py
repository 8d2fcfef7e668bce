"""history at instance, type and system level with _since, _at, _count and paging (http.html §3.1.0.9)."""

from __future__ import annotations

import asyncio

import pytest

# FHIR semantics, not access: the server runs in open mode (security: tests/security_http/).
pytestmark = pytest.mark.open_mode

FHIR_JSON = {"content-type": "application/fhir+json"}


async def _make(client, n: int) -> list[str]:
    ids = []
    for i in range(n):
        r = await client.post("/Patient", json={"resourceType": "Patient", "gender": "female",
                                                 "name": [{"family": f"F{i}"}]}, headers=FHIR_JSON)
        ids.append(r.json()["id"])
    return ids


async def test_type_history_pages_with_next_links_cover_every_version_once(client):
    ids = await _make(client, 7)
    for rid in ids[:3]:
        body = (await client.get(f"/Patient/{rid}")).json()
        await client.put(f"/Patient/{rid}", json={**body, "active": True}, headers=FHIR_JSON)
    seen = []
    url = "/Patient/_history?_count=3"
    pages = 0
    while url:
        page = (await client.get(url)).json()
        assert page["type"] == "history"
        assert page["total"] == (10 if pages == 0 else 11)
        seen += [(e["resource"]["id"], e["resource"]["meta"]["versionId"]) for e in page["entry"]]
        nxt = [link["url"] for link in page["link"] if link["relation"] == "next"]
        url = nxt[0].removeprefix("http://kzfhir.test") if nxt else ""
        pages += 1
        if pages == 1:
            # a write between pages must not shift what the next pages hold
            await _make(client, 1)
    assert pages == 4
    assert len(seen) == 10 == len(set(seen))


async def test_system_history_lists_all_types_newest_first(client):
    await _make(client, 2)
    await client.post("/Organization", json={"resourceType": "Organization", "name": "Клиника"}, headers=FHIR_JSON)
    body = (await client.get("/_history?_count=3")).json()
    # newest first; the server's own conformance resources, published at start-up, come before
    assert [e["resource"]["resourceType"] for e in body["entry"]] == ["Organization", "Patient", "Patient"]


async def test_history_since_excludes_older_versions(client):
    await _make(client, 2)
    await asyncio.sleep(0.01)
    cut = (await client.get("/_history?_count=1")).json()["entry"][0]["response"]["lastModified"]
    await asyncio.sleep(0.01)
    await _make(client, 1)
    body = (await client.get(f"/_history?_since={cut}")).json()
    assert body["total"] == 2  # the version at the cut instant itself, and the newer one


async def test_history_at_gives_versions_current_at_that_time(client):
    [rid] = await _make(client, 1)
    first = (await client.get(f"/Patient/{rid}")).json()
    await asyncio.sleep(0.01)
    await client.put(f"/Patient/{rid}", json={**first, "active": True}, headers=FHIR_JSON)
    at = first["meta"]["lastUpdated"]
    body = (await client.get(f"/Patient/{rid}/_history?_at={at}")).json()
    assert [e["resource"]["meta"]["versionId"] for e in body["entry"]] == ["1"]
    year = at[:4]
    both = (await client.get(f"/Patient/{rid}/_history?_at={year}")).json()
    assert both["total"] == 2


async def test_instance_history_of_unknown_resource_returns_404(client):
    assert (await client.get("/Patient/none/_history")).status_code == 404


async def test_history_previous_links_walk_back_to_the_first_page(client):
    await _make(client, 7)
    first = (await client.get("/Patient/_history?_count=3")).json()
    assert not [lk for lk in first["link"] if lk["relation"] == "previous"]
    second_url = next(lk["url"] for lk in first["link"] if lk["relation"] == "next")
    second = (await client.get(second_url.removeprefix("http://kzfhir.test"))).json()
    prev_url = next(lk["url"] for lk in second["link"] if lk["relation"] == "previous")
    back = (await client.get(prev_url.removeprefix("http://kzfhir.test"))).json()
    ids = [e["resource"]["id"] for e in back["entry"]]
    assert ids == [e["resource"]["id"] for e in first["entry"]]
    assert not [lk for lk in back["link"] if lk["relation"] == "previous"]
