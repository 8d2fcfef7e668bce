"""Hypothesis: for random consents, callers and queries, no read, search, _include, paging, history,
compartment or $everything path returns a resource the rules deny (issue 5 proof; AC-01, AC-12)."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.security.auth import issue_dev_token
from tests.conftest import BASE
from tests.security_http.conftest import FHIR_JSON, consent

PATIENTS = ("p1", "p2", "p3")
DOCTORS = ("dr1", "dr2")
CLASSES = ("Observation", "Condition", "Patient")


def _world() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"resourceType": "Practitioner", "id": d} for d in DOCTORS]
    for p in PATIENTS:
        out.append({"resourceType": "Patient", "id": p, "gender": "unknown"})
        for k in range(2):
            out.append({"resourceType": "Observation", "id": f"o-{p}-{k}", "status": "final", "code": {"text": "x"},
                        "subject": {"reference": f"Patient/{p}"},
                        "performer": [{"reference": f"Practitioner/{DOCTORS[k]}"}]})
        out.append({"resourceType": "Condition", "id": f"c-{p}", "subject": {"reference": f"Patient/{p}"},
                    "code": {"text": "I10"}})
    return out


grants = st.lists(st.tuples(st.sampled_from(PATIENTS), st.sampled_from(DOCTORS),
                            st.sets(st.sampled_from(CLASSES), min_size=1), st.booleans()), max_size=4)
callers = st.one_of(st.tuples(st.just("patient"), st.sampled_from(PATIENTS)),
                    st.tuples(st.just("practitioner"), st.sampled_from(DOCTORS)))


def _allowed(caller: tuple[str, str], resource: dict[str, Any], given_grants: list[Any]) -> bool:
    """The rules, read independently of the engine, for the shapes this test generates."""
    rtype = resource["resourceType"]
    if rtype not in ("Patient", "Observation", "Condition"):
        return True  # directory and conformance data (Practitioner, the published IG ...)
    patient = resource["id"] if rtype == "Patient" else resource["subject"]["reference"].split("/")[1]
    role, who = caller
    if role == "patient":
        return who == patient
    return any(p == patient and d == who and active and rtype in classes
               for p, d, classes, active in given_grants)


async def _returned(c: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    paths = ["/Observation?_include=Observation:subject&_include=Observation:performer&_count=2",
             "/Condition?_revinclude=Observation:subject", "/Patient?_revinclude=Condition:subject",
             "/Observation/_history", "/_history", "/?_type=Observation,Condition,Patient"]
    paths += [f"/Patient/{p}/Observation" for p in PATIENTS] + [f"/Patient/{p}/$everything" for p in PATIENTS]
    for path in paths:
        url: str | None = path
        while url:
            r = await c.get(url, headers=headers)
            if r.status_code != 200:
                break
            body = r.json()
            out += [e["resource"] for e in body.get("entry", []) if e.get("resource", {}).get("resourceType")
                    != "OperationOutcome"]
            nxt = [lk["url"] for lk in body.get("link", []) if lk["relation"] == "next"]
            url = nxt[0].removeprefix(BASE) if nxt else None
    for res in _world():
        r = await c.get(f"/{res['resourceType']}/{res['id']}", headers=headers)
        if r.status_code == 200:
            out.append(r.json())
    return out


async def _run(given_grants: list[Any], caller: tuple[str, str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        s = Settings(database=Path(tmp) / "db.sqlite", dev_key_path=Path(tmp) / "k.json", synchronous_full=False)
        consents = [consent(f"cn{i}", {"reference": f"Practitioner/{d}"}, classes=tuple(sorted(classes)),
                            status="active" if active else "inactive")
                    for i, (p, d, classes, active) in enumerate(given_grants)]
        for cn, (p, *_rest) in zip(consents, given_grants, strict=True):
            cn["patient"] = {"reference": f"Patient/{p}"}
        open_app = create_app(s.model_copy(update={"security_enabled": False}))
        async with open_app.router.lifespan_context(open_app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=open_app), base_url=BASE
        ) as c:
            for res in [*_world(), *consents]:
                r = await c.put(f"/{res['resourceType']}/{res['id']}", json=res, headers=FHIR_JSON)
                assert r.status_code < 300, r.text
        app = create_app(s)
        token = issue_dev_token(caller[0], f"{'Patient' if caller[0] == 'patient' else 'Practitioner'}/{caller[1]}",
                                key_path=s.dev_key_path)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE
        ) as c:
            returned = await _returned(c, {"Authorization": f"Bearer {token}"})
    leaks = [f"{r['resourceType']}/{r['id']}" for r in returned
             if r["resourceType"] != "Consent" and not _allowed(caller, r, given_grants)]
    assert leaks == []
    # and the policy is not stricter than the rules: everything allowed can be read
    seen = {f"{r['resourceType']}/{r['id']}" for r in returned}
    allowed = {f"{r['resourceType']}/{r['id']}" for r in _world() if _allowed(caller, r, given_grants)}
    assert allowed <= seen


@pytest.mark.req("AC-12")
@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grants, callers)
def test_no_path_returns_a_resource_the_policy_denies(given_grants, caller):
    asyncio.run(_run(given_grants, caller))
