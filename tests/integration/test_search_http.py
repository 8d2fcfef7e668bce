"""Search over HTTP: type, system, compartment, POST _search, paging, handling, $everything (issue 3 §6-8)."""

from __future__ import annotations

from typing import Any

import pytest

# FHIR semantics, not access: the server runs in open mode (security: tests/security_http/).
pytestmark = pytest.mark.open_mode

FHIR_JSON = {"content-type": "application/fhir+json"}
FORM = {"content-type": "application/x-www-form-urlencoded"}


async def _put(client, resource: dict[str, Any]) -> None:
    r = await client.put(f"/{resource['resourceType']}/{resource['id']}", json=resource, headers=FHIR_JSON)
    assert r.status_code in (200, 201), r.text


async def _world(client) -> None:
    await _put(client, {"resourceType": "Patient", "id": "p1", "name": [{"family": "Ахметов", "given": ["Ерлан"]}],
                        "birthDate": "1985-03-15", "gender": "male"})
    await _put(client, {"resourceType": "Patient", "id": "p2", "name": [{"family": "Садыкова"}],
                        "birthDate": "1990-01-01", "gender": "female"})
    for n in range(5):
        await _put(client, {"resourceType": "Observation", "id": f"o{n}", "status": "final",
                            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                            "subject": {"reference": "Patient/p1" if n < 4 else "Patient/p2"},
                            "effectiveDateTime": f"2025-05-0{n + 1}T10:00:00Z",
                            "valueQuantity": {"value": 60 + n, "system": "http://unitsofmeasure.org", "code": "/min"}})


def _ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return sorted(e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode)


async def test_type_search_get_and_post_agree(client):
    await _world(client)
    get = (await client.get("/Observation?subject=Patient/p1&date=ge2025-05-02")).json()
    post = (await client.post("/Observation/_search", content="subject=Patient/p1&date=ge2025-05-02",
                              headers=FORM)).json()
    assert get["type"] == "searchset"
    assert _ids(get) == _ids(post) == ["o1", "o2", "o3"]
    assert get["total"] == 3


async def test_paging_links_walk_every_match_once(client):
    await _world(client)
    url, seen = "/Observation?_count=2&_sort=date", []
    while url:
        page = (await client.get(url)).json()
        seen += [e["resource"]["id"] for e in page.get("entry", [])]
        nxt = [lk["url"] for lk in page["link"] if lk["relation"] == "next"]
        url = nxt[0].removeprefix("http://kzfhir.test") if nxt else ""
    assert seen == ["o0", "o1", "o2", "o3", "o4"]


async def test_compartment_search_and_everything(client):
    await _world(client)
    comp = (await client.get("/Patient/p1/Observation")).json()
    assert _ids(comp) == ["o0", "o1", "o2", "o3"]
    everything = (await client.get("/Patient/p1/$everything")).json()
    ids = {e["resource"]["id"] for e in everything["entry"]}
    assert {"p1", "o0", "o3"} <= ids and "o4" not in ids and "p2" not in ids
    assert (await client.get("/Patient/nobody/$everything")).status_code == 404


async def test_system_search_with_type(client):
    await _world(client)
    body = (await client.get("/?_type=Patient&gender=female")).json()
    assert _ids(body) == ["p2"]


async def test_unknown_parameter_lenient_warning_and_strict_400(client):
    await _world(client)
    lenient = (await client.get("/Patient?colour=blue")).json()
    assert any(e["search"]["mode"] == "outcome" for e in lenient["entry"])
    strict = await client.get("/Patient?colour=blue", headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400
    bad = await client.get("/Patient?birthdate=yesterday")
    assert bad.status_code == 400
    assert "birthdate" in bad.text


async def test_summary_count_and_include(client):
    await _world(client)
    count = (await client.get("/Observation?code=http://loinc.org|8867-4&_summary=count")).json()
    assert count["total"] == 5 and "entry" not in count
    inc = (await client.get("/Observation?_id=o4&_include=Observation:subject")).json()
    assert _ids(inc, "include") == ["p2"]


async def test_capability_statement_lists_search_parameters(client):
    meta = (await client.get("/metadata")).json()
    patient = next(r for r in meta["rest"][0]["resource"] if r["type"] == "Patient")
    names = {p["name"] for p in patient["searchParam"]}
    assert {"birthdate", "name", "identifier", "iin"} <= names
    assert all(p["definition"].startswith("http") for p in patient["searchParam"])


async def test_paging_cursors_are_sealed_and_tampering_is_refused(client):
    await _world(client)
    page = (await client.get("/Observation?_count=2&_sort=date")).json()
    nxt = next(lk["url"] for lk in page["link"] if lk["relation"] == "next")
    token = nxt.split("_cursor=")[1].split("&")[0]
    import base64

    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert b"o1" not in raw and b"Observation" not in raw  # the last row's id and type are not readable
    tampered = nxt.replace(token, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    r = await client.get(tampered.removeprefix("http://kzfhir.test"))
    assert r.status_code == 400
    hist = (await client.get("/Observation/_history?_count=2")).json()
    hist_next = next(lk["url"] for lk in hist["link"] if lk["relation"] == "next")
    assert not hist_next.split("_cursor=")[1].isdigit()  # write sequence numbers are not shown
