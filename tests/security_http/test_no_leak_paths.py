"""Hypothesis: over random Consents and callers, no path — direct, inside a batch, inside a transaction,
conditional forms, includes, paging, history, operations, bulk export — gives a caller anything the rules
deny when each resource is judged alone, no filtered Bundle carries a total, and every answer about a
hidden resource is the answer about an unknown one (issue 10 "Proof"; AC-01, AC-12)."""

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
from tests.security_http import leak_probes as probes
from tests.security_http.conftest import FHIR_JSON, consent

PATIENTS = ("p1", "p2", "p3")
DOCTORS = ("dr1", "dr2")
CLASSES = ("Observation", "Condition", "Patient", "Encounter", "Provenance", "Group")


def world() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"resourceType": "Practitioner", "id": d} for d in DOCTORS]
    for p in PATIENTS:
        out += [{"resourceType": "Patient", "id": p, "gender": "unknown"},
                {"resourceType": "Encounter", "id": f"e-{p}", "status": "finished",
                 "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR"},
                 "subject": {"reference": f"Patient/{p}"}},
                {"resourceType": "Condition", "id": f"c-{p}", "subject": {"reference": f"Patient/{p}"},
                 "code": {"text": "I10"}}]
        for k in range(2):
            out.append({"resourceType": "Observation", "id": f"o-{p}-{k}", "status": "final", "code": {"text": "x"},
                        "subject": {"reference": f"Patient/{p}"}, "encounter": {"reference": f"Encounter/e-{p}"},
                        "performer": [{"reference": f"Practitioner/{DOCTORS[k]}"}],
                        "effectiveDateTime": f"2025-05-0{k + 1}T10:00:00+05:00"})
        # about a patient's data without naming the patient: theirs all the same
        out.append({"resourceType": "Provenance", "id": f"prov-{p}", "target": [{"reference": f"Observation/o-{p}-0"}],
                    "recorded": "2025-05-01T10:00:00+05:00", "agent": [{"who": {"reference": "Practitioner/dr1"}}]})
    out.append({"resourceType": "Group", "id": "g12", "type": "person", "actual": True,
                "member": [{"entity": {"reference": "Patient/p1"}}, {"entity": {"reference": "Patient/p2"}}]})
    return out


def owners(resource: dict[str, Any]) -> set[str]:
    """Whose data a resource is, read independently of the server: the rule the tests hold it to."""
    rtype = resource["resourceType"]
    if rtype == "Patient":
        return {resource["id"]}
    if rtype in ("Observation", "Condition", "Encounter"):
        return {resource["subject"]["reference"].split("/")[1]}
    if rtype == "Consent":
        return {resource["patient"]["reference"].split("/")[1]}
    if rtype == "Provenance":
        return {t["reference"].split("/")[1].split("-")[1] for t in resource["target"]}
    if rtype == "Group":
        return {m["entity"]["reference"].split("/")[1] for m in resource["member"]}
    return set()


def allowed(caller: tuple[str, str], resource: dict[str, Any], grants: list[Any], *, export: bool = False) -> bool:
    rtype = resource["resourceType"]
    patients = owners(resource)
    if not patients:
        return rtype not in ("Consent",)  # directory data (Practitioner) and the published IG
    role, who = caller
    if role == "patient":
        return patients == {who}
    return all(any(p == patient and d == who and active and rtype in classes and (not export or disclose)
                   for p, d, classes, active, disclose in grants) for patient in patients)


grants = st.lists(st.tuples(st.sampled_from(PATIENTS), st.sampled_from(DOCTORS),
                            st.sets(st.sampled_from(CLASSES), min_size=1), st.booleans(), st.booleans()), max_size=4)
callers = st.one_of(st.tuples(st.just("patient"), st.sampled_from(PATIENTS)),
                    st.tuples(st.just("practitioner"), st.sampled_from(DOCTORS)))


async def run(given: list[Any], caller: tuple[str, str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        s = Settings(database=Path(tmp) / "db.sqlite", dev_key_path=Path(tmp) / "k.json", synchronous_full=False)
        consents = []
        for i, (p, d, classes, active, disclose) in enumerate(given):
            cn = consent(f"cn{i}", {"reference": f"Practitioner/{d}"}, classes=tuple(sorted(classes)),
                         status="active" if active else "inactive",
                         actions=("access", "disclose") if disclose else ("access",))
            cn["patient"] = {"reference": f"Patient/{p}"}
            consents.append(cn)
        seeding = create_app(s.model_copy(update={"security_enabled": False}))
        async with seeding.router.lifespan_context(seeding), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=seeding), base_url=BASE) as c:
            for res in [*world(), *consents]:
                r = await c.put(f"/{res['resourceType']}/{res['id']}", json=res, headers=FHIR_JSON)
                assert r.status_code < 300, r.text
        app = create_app(s)
        who = f"{'Patient' if caller[0] == 'patient' else 'Practitioner'}/{caller[1]}"
        headers = {"Authorization": f"Bearer {issue_dev_token(caller[0], who, key_path=s.dev_key_path)}"}
        seen = probes.Seen()
        hidden = [(r["resourceType"], r["id"]) for r in world() if not allowed(caller, r, given)]
        hidden_patients = [rid for rtype, rid in hidden if rtype == "Patient"]
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=BASE, timeout=60) as c:
            p = probes.Prober(c, headers, seen)
            obs = [r["id"] for r in world() if r["resourceType"] == "Observation"]
            await probes.searches(p, list(PATIENTS), obs)
            await probes.histories(p, hidden)
            await probes.reads(p, world(), hidden)
            await probes.operations(p, hidden, hidden_patients)
            await probes.bundles(p, hidden, hidden_patients, obs)
            after = [(await c.get(f"/{r['resourceType']}/{r['id']}", headers=headers)) for r in world()]
    leaks = sorted({f"{r['resourceType']}/{r['id']}" for r in seen.resources
                    if r.get("resourceType") not in (None, "OperationOutcome", "CapabilityStatement")
                    and r.get("id") in {w["id"] for w in world()} | {c["id"] for c in consents}
                    and not allowed(caller, r, given)})
    assert leaks == []
    exported = sorted({f"{r['resourceType']}/{r['id']}" for r in seen.exported
                       if not allowed(caller, r, given, export=True)})
    assert exported == []
    assert seen.totals == []
    differing = [(probe, a, b) for probe, a, b in seen.pairs if a != b]
    assert differing == []
    # and the policy is not stricter than the rules: everything allowed is readable, and nothing
    # hidden was changed or deleted by the probes (each answered "absent")
    for resource, response in zip(world(), after, strict=True):
        if allowed(caller, resource, given):
            assert response.status_code == 200, (resource["id"], response.text)
            assert response.json()["meta"]["versionId"] == "1", resource["id"]


@pytest.mark.req("AC-12")
@pytest.mark.req("AC-01")
@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grants, callers)
def test_no_path_gives_a_caller_what_the_rules_deny(given, caller):
    asyncio.run(run(given, caller))
