"""SMART v2 granular scopes as the policy's restriction (issue 16): the policy's answer for one resource is
the search engine's answer, and what a scope may hold is checked (policy/granular.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_server.search.parse import parse_search
from fhir_server.security.context import RequestContext
from fhir_server.security.policy import AccessPolicy, Action, PatientFacts
from fhir_server.security.policy.granular import ScopeError, check_scope, restrict_query, scope_problem
from fhir_server.storage.sqlite.search.one import resource_matches
from tests.search.sqlite_db import IndexedDb

CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
#: Scope queries over the parameter types a scope supports (token, reference, string, date, uri ...).
QUERIES = [
    "category=vital-signs", f"category={CAT}|laboratory", f"category={CAT}|vital-signs,laboratory",
    "category=http://other.example|vital-signs", "status=final,amended", "code:not=http://loinc.org|8867-4",
    "code=8867-4", "date=ge2025-01-01", "date=lt2024", "subject=Patient/p1", "subject:Patient=p2",
    "code:text=puls", "category:missing=true", "_id=o1,o3", "_lastUpdated=ge2024-01-01T00:00:30Z",
    "status=final&category=vital-signs", "value-quantity=gt60", "focus:missing=false",
]
POLICY = AccessPolicy(matcher=resource_matches)
P1 = PatientFacts("p1")


def observation(n: int, categories: list[str], status: str, code: str, date: str | None, text: str) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation", "id": f"o{n}", "status": status,
        "code": {"coding": [{"system": "http://loinc.org", "code": code}], "text": text},
        "subject": {"reference": "Patient/p1"}, "valueQuantity": {"value": 40 + 10 * n, "unit": "/min"},
    }
    if categories:
        resource["category"] = [{"coding": [{"system": CAT, "code": c}]} for c in categories]
    if date:
        resource["effectiveDateTime"] = date
    return resource


observations = st.lists(
    st.tuples(st.lists(st.sampled_from(["vital-signs", "laboratory", "survey"]), max_size=2, unique=True),
              st.sampled_from(["final", "amended", "preliminary"]), st.sampled_from(["8867-4", "2339-0"]),
              st.sampled_from([None, "2023-06-01", "2025-03-04T10:00:00+05:00", "2026"]),
              st.sampled_from(["pulse", "glucose"])),
    min_size=1, max_size=6)
scope_sets = st.lists(st.sampled_from(QUERIES), min_size=1, max_size=3, unique=True)


def patient(*scopes: str) -> RequestContext:
    return RequestContext(subject="p1", fhir_user="Patient/p1", role="patient", scopes=scopes, authenticated=True)


@pytest.mark.req("AC-12")
@pytest.mark.req("TM-04")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(observations, scope_sets, st.booleans())
def test_allowed_is_exactly_what_the_search_matches(rows: list[Any], queries: list[str], unrestricted: bool) -> None:
    """For random resources and granular scopes: the policy allows a resource iff a search with one of the
    scopes' queries returns it (scopes on a type OR-ed), and a search restricted by the policy returns
    exactly those. An unrestricted scope on the type covers all of them."""
    db = IndexedDb()
    stored = []
    for n, row in enumerate(rows, 1):
        db.put(observation(n, *row))
        stored.append(db.search("Observation", [("_id", f"o{n}")]).matches[0])
    scopes = [f"patient/Observation.rs?{q}" for q in queries] + (["patient/Observation.r"] if unrestricted else [])
    expected: set[str] = set()
    for q in queries:
        expected |= db.ids("Observation", parse_qsl(q))
    ctx = patient(*scopes)
    allowed_read = {m.resource_id for m in stored
                    if POLICY.can_see(ctx, Action.READ, orjson.loads(m.data), [P1], patient_ids={"p1"}).allowed}
    assert allowed_read == ({m.resource_id for m in stored} if unrestricted else expected)
    allowed_search = {m.resource_id for m in stored
                      if POLICY.can_see(ctx, Action.SEARCH, orjson.loads(m.data), [P1], patient_ids={"p1"}).allowed}
    assert allowed_search == expected  # the unrestricted scope has no 's'
    restricted = restrict_query(parse_search("Observation", [], strict=True), ctx.scopes, "s")
    assert {m.resource_id for m in db.run(restricted).matches} == expected


@pytest.mark.req("AC-12")
def test_a_policy_without_the_search_engine_lets_granular_scopes_grant_nothing() -> None:
    resource = observation(1, ["vital-signs"], "final", "8867-4", None, "pulse")
    ctx = patient("patient/Observation.rs?category=vital-signs")
    assert not AccessPolicy().can_see(ctx, Action.READ, resource, [P1], patient_ids={"p1"}).allowed
    assert POLICY.can_see(ctx, Action.READ, resource, [P1], patient_ids={"p1"}).allowed


@pytest.mark.req("AC-12")
def test_levels_do_not_mix_a_user_query_with_a_patient_scope() -> None:
    """``user/…?category=laboratory`` plus ``patient/Observation.rs``: another patient's vital signs are
    reached by neither (the user scope's query does not match, the patient scope is bound to the context)."""
    other = {**observation(1, ["vital-signs"], "final", "8867-4", None, "pulse"),
             "subject": {"reference": "Patient/p2"}}
    ctx = RequestContext(subject="dr", fhir_user="Practitioner/dr1", role="practitioner", launch_patient="Patient/p1",
                         scopes=("user/Observation.rs?category=laboratory", "patient/Observation.rs"),
                         authenticated=True)
    verdict = POLICY.can_see(ctx, Action.READ, other, [PatientFacts("p2")], patient_ids={"p2"})
    assert not verdict.allowed and "patient in context" in verdict.reason


@pytest.mark.parametrize("scope, problem", [
    ("patient/Observation.rs?_count=5", "result parameter"),
    ("patient/Observation.rs?subject.name=x", "chained"),
    ("patient/Observation.rs?_has:Provenance:target:agent=x", "_has"),
    ("patient/Observation.rs?category:in=http://x/vs", "modifier ':in'"),
    ("patient/Observation.rs?code:below=http://loinc.org|1", "modifier ':below'"),
    ("patient/Observation.rs?nonsense=1", "not a search parameter"),
    ("patient/Observation.rs?combo-code-value-quantity=x$1", "composite"),
    ("patient/Observation.rs?date=notadate", "date"),
    ("patient/Observation.rs?category=", "no value"),
    ("patient/Observation.rs?", "empty"),
    ("patient/*.rs?category=vital-signs", "not a search parameter"),
])
@pytest.mark.req("TM-04")
def test_a_scope_the_server_cannot_enforce_is_refused_with_its_reason(scope: str, problem: str) -> None:
    with pytest.raises(ScopeError) as err:
        check_scope(scope)
    assert problem in str(err.value)
    assert scope in (scope_problem(scope) or "")


@pytest.mark.parametrize("scope", [
    "patient/Observation.rs?category=vital-signs", f"patient/Observation.rs?category={CAT}|vital-signs",
    "user/Condition.rs?category=encounter-diagnosis&clinical-status=active", "patient/*.rs?_security=R",
    "patient/Observation.rs?subject:Patient=p1", "patient/Observation.rs?date=ge2020", "patient/Patient.rs?name=ivan",
    "patient/Observation.rs", "openid", "launch/patient",
])
def test_enforceable_scopes_pass(scope: str) -> None:
    check_scope(scope)
    assert scope_problem(scope) is None


def test_a_token_scope_that_cannot_be_enforced_grants_nothing_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    resource = observation(1, ["vital-signs"], "final", "8867-4", None, "pulse")
    ctx = patient("patient/Observation.rs?category:in=http://x/vs")
    with caplog.at_level("WARNING", logger="fhir_server.security.policy.granular"):
        assert not POLICY.can_see(ctx, Action.READ, resource, [P1], patient_ids={"p1"}).allowed
    assert "grants nothing" in caplog.text
    restricted = restrict_query(parse_search("Observation", [], strict=True), ctx.scopes, "s")
    db = IndexedDb()
    db.put(resource)
    assert db.run(restricted).matches == ()
