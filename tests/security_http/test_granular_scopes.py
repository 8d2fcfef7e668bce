"""SMART v2 granular scopes over real HTTP (issue 16): ``patient/Observation.rs?category=vital-signs``
reaches the vital signs and nothing else, on every path — read, vread, history, search with paging and
includes, ``$everything``, Bundle entries, conditional interactions and writes — and the refusal is
audited like any other (AC-14). The Consent rules still apply on top (a scope never widens them)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.security.policy.engine import GRANULAR_REFUSAL
from tests.conftest import BASE
from tests.security_http.conftest import BIN, FHIR_JSON, ORG_ACTOR, consent

pytestmark = [pytest.mark.req("AC-12"), pytest.mark.req("TM-04")]
CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
VITALS = f"patient/Observation.crus?category={CAT}|vital-signs"


def obs(oid: str, category: str, code: str, patient: str = "p1", **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "category": [{"coding": [{"system": CAT, "code": category}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": f"Patient/{patient}"}, "effectiveDateTime": "2025-05-01T10:00:00+05:00",
            **extra}


GRANULAR_SEED = [
    obs("ov1", "vital-signs", "8867-4"), obs("ov2", "vital-signs", "8480-6"),
    obs("ol1", "laboratory", "2339-0"), obs("ol2", "laboratory", "718-7"),
    obs("ov3", "vital-signs", "8867-4", patient="p2"),
]


@pytest.fixture
async def server(secure_settings: Settings, seed: Callable[..., Any]) -> AsyncIterator[httpx.AsyncClient]:
    await seed([*GRANULAR_SEED,
                consent("cons1", {"reference": "Practitioner/dr1"}, classes=("Observation",),
                        actions=("access", "correct", "collect")),
                consent("cons-org", ORG_ACTOR, classes=("Observation", "Condition"))])
    app = create_app(secure_settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE
    ) as c:
        yield c


@pytest.fixture
def patient(token: Callable[..., dict[str, str]]) -> dict[str, str]:
    return token("patient", "Patient/p1", scopes=[VITALS, "patient/Patient.rs"])


@pytest.fixture
def everything(token: Callable[..., dict[str, str]]) -> dict[str, str]:
    """The organisation's MIS with the whole type: to look at what is really stored."""
    return token("system", None, bin=BIN)


@pytest.fixture
def writer(token: Callable[..., dict[str, str]]) -> dict[str, str]:
    """dr1, whom p1's Consent lets read and correct Observations, with unrestricted scopes."""
    return token("practitioner", "Practitioner/dr1")


def ids(bundle: dict[str, Any], mode: str | None = None, rtype: str = "Observation") -> list[str]:
    return sorted(e["resource"]["id"] for e in bundle.get("entry", []) if e["resource"]["resourceType"] == rtype
                  and (mode is None or e.get("search", {}).get("mode") == mode))


async def category_of(server: httpx.AsyncClient, everything: dict[str, str], oid: str) -> str:
    r = await server.get(f"/Observation/{oid}", headers=everything)
    assert r.status_code == 200, r.text
    return str(r.json()["category"][0]["coding"][0]["code"])


async def test_read_and_vread_reach_only_matching_resources(server, patient):
    for _ in range(2):  # the second read is answered by the compiled read by id: no verdict reused
        assert (await server.get("/Observation/ov1", headers=patient)).status_code == 200
        r = await server.get("/Observation/ol1", headers=patient)
        assert r.status_code == 404
        assert r.text == (await server.get("/Observation/nope", headers=patient)).text.replace("nope", "ol1")
    assert (await server.get("/Observation/ov1/_history/1", headers=patient)).status_code == 200
    assert (await server.get("/Observation/ol1/_history/1", headers=patient)).status_code == 404
    assert (await server.get("/Patient/p1", headers=patient)).status_code == 200


async def test_history_shows_only_matching_versions(server, patient, writer):
    moved = obs("ov2", "laboratory", "8480-6")  # version 2 of ov2 is a laboratory result
    r = await server.put("/Observation/ov2", json=moved, headers={**FHIR_JSON, **writer})
    assert r.status_code == 200, r.text
    r = await server.get("/Observation/ov2/_history", headers=patient)
    assert r.status_code == 404  # the current version is out of reach: as an unknown id
    assert (await server.get("/Observation/ov2/_history/1", headers=patient)).status_code == 200
    assert (await server.get("/Observation/ov2/_history/2", headers=patient)).status_code == 404
    typed = (await server.get("/Observation/_history", headers=patient)).json()
    versions = sorted((e["resource"]["id"], e["resource"]["meta"]["versionId"]) for e in typed.get("entry", [])
                      if "resource" in e)
    assert versions == [("ov1", "1"), ("ov2", "1")]


async def test_search_pages_totals_and_includes_hold_only_matches(server, patient):
    bundle = (await server.get("/Observation?_total=accurate", headers=patient)).json()
    assert ids(bundle) == ["ov1", "ov2"]
    assert "total" not in bundle
    assert ids((await server.get("/Observation?category=laboratory", headers=patient)).json()) == []
    seen, url = [], "/Observation?_count=1"
    while url:
        page = (await server.get(url, headers=patient)).json()
        seen += ids(page)
        assert len(page.get("entry", [])) <= 1
        url = next((link["url"].removeprefix(BASE) for link in page["link"] if link["relation"] == "next"), "")
    assert sorted(seen) == ["ov1", "ov2"]
    r = await server.get("/Observation?_summary=count", headers=patient)
    assert r.status_code == 403  # a count over resources the caller reaches only in part
    rev = (await server.get("/Patient?_id=p1&_revinclude=Observation:subject", headers=patient)).json()
    assert ids(rev, "include") == ["ov1", "ov2"]
    assert ids(rev, "match", "Patient") == ["p1"]


async def test_everything_holds_only_matching_resources(server, patient):
    bundle = (await server.get("/Patient/p1/$everything", headers=patient)).json()
    assert ids(bundle) == ["ov1", "ov2"]


async def test_writes_must_match_before_and_after(server, patient, everything):
    h = {**FHIR_JSON, **patient}
    assert (await server.post("/Observation", json=obs("x", "laboratory", "2339-0"), headers=h)).status_code == 403
    created = await server.post("/Observation", json=obs("x", "vital-signs", "8867-4"), headers=h)
    assert created.status_code == 201, created.text
    # moving a matching resource out of the scope: the version written must match
    r = await server.put("/Observation/ov1", json=obs("ov1", "laboratory", "8867-4"), headers=h)
    assert r.status_code == 403
    assert await category_of(server, everything, "ov1") == "vital-signs"
    # moving a resource into the scope: the version replaced must match (it is hidden: never changed)
    r = await server.put("/Observation/ol1", json=obs("ol1", "vital-signs", "2339-0"), headers=h)
    assert r.status_code >= 400
    assert await category_of(server, everything, "ol1") == "laboratory"
    patch = [{"op": "replace", "path": "/status", "value": "amended"}]
    r = await server.patch("/Observation/ol1", json=patch,
                           headers={**patient, "content-type": "application/json-patch+json"})
    assert r.status_code == 404


async def test_conditional_interactions_do_not_see_hidden_matches(server, patient, everything):
    h = {**FHIR_JSON, **patient}
    # If-None-Exist matching only a hidden laboratory result: no match, so the resource is created
    r = await server.post("/Observation", json=obs("y", "vital-signs", "2339-0"),
                          headers={**h, "If-None-Exist": "code=http://loinc.org|2339-0"})
    assert r.status_code == 201, r.text
    # conditional update whose only visible match is none: the hidden one is never changed
    r = await server.put("/Observation?code=http://loinc.org|718-7", json=obs("z", "vital-signs", "718-7"), headers=h)
    assert r.status_code in (201, 403, 405), r.text
    assert await category_of(server, everything, "ol2") == "laboratory"


async def test_conditional_delete_and_delete_spare_what_the_scope_does_not_reach(server, token, everything):
    doctor = token("practitioner", "Practitioner/dr1", scopes=[f"user/Observation.rds?category={CAT}|vital-signs"])
    r = await server.delete("/Observation?code=http://loinc.org|2339-0", headers=doctor)
    assert r.status_code in (200, 204), r.text
    assert await category_of(server, everything, "ol1") == "laboratory"
    assert (await server.delete("/Observation/ol2", headers=doctor)).status_code in (200, 204)
    assert await category_of(server, everything, "ol2") == "laboratory"
    # what the scope does reach is deleted
    assert (await server.delete("/Observation?code=http://loinc.org|8480-6", headers=doctor)).status_code in (200, 204)
    assert (await server.get("/Observation/ov2", headers=everything)).status_code == 410


async def test_bundle_entries_carry_the_same_restriction(server, patient, everything):
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Observation/ol1"}},
        {"request": {"method": "GET", "url": "Observation/ov1"}},
        {"request": {"method": "GET", "url": "Observation?category=laboratory"}},
        {"request": {"method": "PUT", "url": "Observation/ol2"}, "resource": obs("ol2", "vital-signs", "718-7")},
        {"request": {"method": "POST", "url": "Observation"}, "resource": obs("w", "laboratory", "718-7")},
    ]}
    r = await server.post("/", json=batch, headers={**FHIR_JSON, **patient})
    assert r.status_code == 200, r.text
    entries = r.json()["entry"]
    statuses = [e["response"]["status"].split()[0] for e in entries]
    assert statuses[0] == "404" and statuses[1] == "200"
    assert entries[2]["resource"].get("entry", []) == []
    assert int(statuses[3]) >= 400 and int(statuses[4]) == 403
    assert await category_of(server, everything, "ol2") == "laboratory"
    transaction = {**batch, "type": "transaction", "entry": batch["entry"][3:4]}
    r = await server.post("/", json=transaction, headers={**FHIR_JSON, **patient})
    assert r.status_code >= 400
    assert await category_of(server, everything, "ol2") == "laboratory"


async def test_consent_still_decides_on_top_of_the_scope(server, token):
    """dr2 has no Consent: a granular scope on vital signs reaches nothing of p1's."""
    doctor = token("practitioner", "Practitioner/dr2", scopes=[f"user/Observation.rs?category={CAT}|vital-signs"])
    assert (await server.get("/Observation/ov1", headers=doctor)).status_code == 404
    assert ids((await server.get("/Observation", headers=doctor)).json()) == []
    consented = token("practitioner", "Practitioner/dr1", scopes=[f"user/Observation.rs?category={CAT}|vital-signs"])
    assert (await server.get("/Observation/ov1", headers=consented)).status_code == 200
    assert (await server.get("/Observation/ov3", headers=consented)).status_code == 404  # p2 gave no consent


@pytest.mark.req("AC-14")
async def test_a_refusal_for_the_scope_is_audited_with_its_reason(server, patient, token):
    assert (await server.get("/Observation/ol1", headers=patient)).status_code == 404
    auditor = token("auditor", "Practitioner/dr2")
    events = (await server.get("/AuditEvent?patient=Patient/p1&_count=500", headers=auditor)).json()
    refused = [e["resource"] for e in events.get("entry", []) if e["resource"].get("outcome") == "4"]
    assert any(GRANULAR_REFUSAL in (e.get("outcomeDesc") or "") and any(
        "Observation/ol1" in (ent.get("what") or {}).get("reference", "") for ent in e.get("entity", []))
        for e in refused), refused


async def test_oversight_with_only_a_granular_scope_is_refused(server, token):
    auditor = token("auditor", "Practitioner/dr2", scopes=["user/AuditEvent.rs?outcome=4"])
    assert (await server.get("/AuditEvent", headers=auditor)).status_code == 403


async def test_composed_paths_never_reach_past_the_scope(server, patient, writer):
    """Includes from a matching resource, compartment search, conditional references in a transaction and
    instance operations do not reach a non-matching resource."""
    linked = obs("ov1", "vital-signs", "8867-4", hasMember=[{"reference": "Observation/ol1"}])
    assert (await server.put("/Observation/ov1", json=linked, headers={**FHIR_JSON, **writer})).status_code == 200
    bundle = (await server.get("/Observation?_id=ov1&_include=Observation:has-member", headers=patient)).json()
    assert ids(bundle) == ["ov1"]
    assert ids((await server.get("/Patient/p1/Observation", headers=patient)).json()) == ["ov1", "ov2"]
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "POST", "url": "Observation"},
         "resource": obs("t1", "vital-signs", "8867-4", hasMember=[{"reference": "Observation?code=http://loinc.org|2339-0"}])},
    ]}
    r = await server.post("/", json=transaction, headers={**FHIR_JSON, **patient})
    assert r.status_code >= 400  # the only match is out of reach: as no match at all
    assert "ol1" not in r.text
    assert (await server.get("/Observation/ol1/$validate", headers=patient)).status_code == 404
