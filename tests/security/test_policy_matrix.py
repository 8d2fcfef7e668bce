"""Role x resource x consent-state matrix at the engine level (the lead adds the HTTP one)."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.security.context import RequestContext
from fhir_server.security.policy import AccessPolicy, Action, Decision, PatientFacts
from tests.security.security_builders import (
    NOW,
    ORG_BIN,
    actor,
    classes,
    condition,
    consent,
    ctx,
    observation,
    provision,
    representative,
)

POLICY = AccessPolicy(clock=lambda: NOW)
PATIENT = "7"

#: role case -> (context, actor reference the consents name, Consent actor as identifier?)
ROLE_CASES: dict[str, RequestContext] = {
    "patient-owner": ctx("patient", "Patient/7"),
    "representative": ctx("related-person", "RelatedPerson/guardian"),
    "other-patient": ctx("patient", "Patient/8"),
    "relative": ctx("related-person", "RelatedPerson/aunt"),
    "practitioner": ctx("practitioner", "Practitioner/1"),
    "system": ctx("system", None, organization_bin=ORG_BIN),
    "break-glass": ctx(
        "practitioner", "Practitioner/1", break_glass_reason="unconscious patient", break_glass_until=int(NOW) + 600
    ),
    "auditor": ctx("auditor", "Practitioner/50"),
    "admin": ctx("admin", "Practitioner/60"),
    "legal-with-basis": ctx("legal-exception", "Practitioner/70", legal_basis="court order 2-55/2025"),
    "legal-without-basis": ctx("legal-exception", "Practitioner/70"),
}

STATES = ("none", "permit", "expired", "revoked", "nested-deny", "observation-only")

#: Expected (Observation allowed, Condition allowed) per role case and consent state.
T, F = True, False
SAME_AS_CONSENT = {
    "none": (F, F),
    "permit": (T, T),
    "expired": (F, F),
    "revoked": (F, F),
    "nested-deny": (T, F),
    "observation-only": (T, F),
}
EXPECTED: dict[str, dict[str, tuple[bool, bool]]] = {
    "patient-owner": dict.fromkeys(STATES, (T, T)),
    "representative": dict.fromkeys(STATES, (T, T)),
    "other-patient": SAME_AS_CONSENT,
    "relative": SAME_AS_CONSENT,
    "practitioner": SAME_AS_CONSENT,
    "system": SAME_AS_CONSENT,
    "break-glass": dict.fromkeys(STATES, (T, T)),
    "auditor": dict.fromkeys(STATES, (F, F)),
    "admin": dict.fromkeys(STATES, (F, F)),
    "legal-with-basis": dict.fromkeys(STATES, (T, T)),
    "legal-without-basis": dict.fromkeys(STATES, (F, F)),
}


def _actor_for(context: RequestContext) -> dict[str, Any]:
    if context.role == "system":
        return actor(bin_value=ORG_BIN)
    return actor(context.fhir_user)


def consents_for(state: str, context: RequestContext) -> list[dict[str, Any]]:
    who = _actor_for(context)
    if state == "none":
        return []
    if state == "permit":
        return [consent(PATIENT, provision(None, provision("permit", actor=[who])))]
    if state == "expired":
        root = provision(None, provision("permit", actor=[who]), period={"start": "2023-01-01", "end": "2024-01-01"})
        return [consent(PATIENT, root)]
    if state == "revoked":
        return [consent(PATIENT, provision(None, provision("permit", actor=[who])), status="inactive")]
    if state == "nested-deny":
        inner = provision("deny", **{"class": classes("Condition")})
        return [consent(PATIENT, provision(None, provision("permit", inner, actor=[who])))]
    assert state == "observation-only"
    return [consent(PATIENT, provision(None, provision("permit", actor=[who], **{"class": classes("Observation")})))]


def facts_for(state: str, context: RequestContext) -> PatientFacts:
    return PatientFacts(
        PATIENT,
        consents=tuple(consents_for(state, context)),
        representatives=(representative(PATIENT, "guardian"), representative(PATIENT, "aunt", verified=False)),
    )


@pytest.mark.req("AC-01")
@pytest.mark.req("AC-02")
@pytest.mark.req("AC-03")
@pytest.mark.req("AC-09")
@pytest.mark.req("AC-10")
@pytest.mark.req("AC-11")
@pytest.mark.req("AC-12")
@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("role_case", list(ROLE_CASES))
def test_matrix_role_by_consent_state_on_clinical_resources(role_case: str, state: str) -> None:
    context = ROLE_CASES[role_case]
    facts = [facts_for(state, context)]
    seen = (
        POLICY.can_see(context, Action.READ, observation(PATIENT), facts).allowed,
        POLICY.can_see(context, Action.READ, condition(PATIENT), facts).allowed,
    )
    assert seen == EXPECTED[role_case][state]


@pytest.mark.req("AC-02")
@pytest.mark.parametrize("state", STATES)
def test_break_glass_is_flagged_emergency_exactly_when_no_consent_granted(state: str) -> None:
    context = ROLE_CASES["break-glass"]
    verdict = POLICY.can_see(context, Action.READ, condition(PATIENT), [facts_for(state, context)])
    assert verdict.allowed
    assert verdict.emergency is (state not in ("permit",))


AUDIT_EVENT = {
    "resourceType": "AuditEvent",
    "id": "a1",
    "entity": [{"what": {"reference": "Patient/7"}}],
}
DIRECTORY = {"resourceType": "Practitioner", "id": "p9"}


@pytest.mark.req("AC-14")
@pytest.mark.parametrize("role_case", list(ROLE_CASES))
def test_matrix_audit_events_are_for_oversight_roles_only(role_case: str) -> None:
    context = ROLE_CASES[role_case]
    verdict = POLICY.can_see(context, Action.READ, AUDIT_EVENT, [facts_for("permit", context)])
    assert verdict.allowed is (role_case in ("auditor", "admin"))


@pytest.mark.parametrize("role_case", list(ROLE_CASES))
def test_matrix_directory_resources_are_readable_except_by_auditors(role_case: str) -> None:
    context = ROLE_CASES[role_case]
    verdict = POLICY.can_see(context, Action.READ, DIRECTORY)
    expected = role_case not in ("auditor", "legal-without-basis")
    assert verdict.allowed is expected


@pytest.mark.req("AC-12")
@pytest.mark.parametrize("role_case", list(ROLE_CASES))
def test_matrix_start_gate_on_observation_search(role_case: str) -> None:
    verdict = POLICY.start(ROLE_CASES[role_case], Action.SEARCH, "Observation")
    rejected = role_case in ("auditor", "admin", "legal-without-basis")
    assert verdict.decision is (Decision.REJECT if rejected else Decision.PROCEED)
