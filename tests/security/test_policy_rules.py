"""The access rules one by one: care relationships, representatives, break-glass, writes, scopes."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.security.policy import (
    DSR_TASK_SYSTEM,
    AccessPolicy,
    Action,
    Decision,
    FactsCache,
    PatientFacts,
    total_allowed,
)
from tests.security.security_builders import (
    NOW,
    ORG_BIN,
    actor,
    care_team,
    condition,
    consent,
    ctx,
    grant,
    observation,
    provision,
    representative,
)

POLICY = AccessPolicy(clock=lambda: NOW)
DOCTOR = ctx("practitioner", "Practitioner/1")


def facts(**kwargs: Any) -> list[PatientFacts]:
    return [PatientFacts("7", **{k: tuple(v) for k, v in kwargs.items()})]


def team_consent() -> dict[str, Any]:
    return consent("7", provision(None, provision("permit", actor=[actor("CareTeam/team1")])))


@pytest.mark.req("TM-15")
@pytest.mark.req("AC-01")
def test_care_team_member_reaches_data_when_patient_consented_to_the_team() -> None:
    verdict = POLICY.can_see(
        DOCTOR,
        Action.READ,
        condition("7"),
        facts(consents=[team_consent()], care_relationships=[care_team("7", "Practitioner/1")]),
    )
    assert verdict.decision is Decision.AUTHORIZED and verdict.consents == ("Consent/c1",)


@pytest.mark.req("AC-12")
def test_care_team_membership_without_consent_grants_nothing() -> None:
    verdict = POLICY.can_see(
        DOCTOR, Action.READ, condition("7"), facts(care_relationships=[care_team("7", "Practitioner/1")])
    )
    assert verdict.decision is Decision.REJECT


@pytest.mark.req("TM-15")
@pytest.mark.parametrize(
    "team",
    [
        care_team("7", "Practitioner/1", status="inactive"),
        care_team("7", "Practitioner/1", period={"end": "2025-01-01"}),
        care_team("8", "Practitioner/1"),
        care_team("7", "Practitioner/2"),
        {
            **care_team("7", "Practitioner/1"),
            "participant": [{"member": {"reference": "Practitioner/1"}, "period": {"end": "2024-12-31"}}],
        },
    ],
    ids=["team-inactive", "team-ended", "other-patient", "not-a-member", "membership-ended"],
)
def test_stale_or_foreign_care_team_does_not_match_the_consent(team: dict[str, Any]) -> None:
    verdict = POLICY.can_see(
        DOCTOR, Action.READ, condition("7"), facts(consents=[team_consent()], care_relationships=[team])
    )
    assert verdict.decision is Decision.REJECT


@pytest.mark.req("TM-15")
def test_remote_monitoring_order_links_attending_doctor_to_the_monitoring_team() -> None:
    order = {
        "resourceType": "ServiceRequest",
        "id": "sr1",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/7"},
        "requester": {"reference": "Practitioner/1"},
        "performer": [{"reference": "CareTeam/team1"}],
    }
    monitoring_team = care_team("7", "Practitioner/5")
    relationships = [order, monitoring_team]
    doctor = POLICY.can_see(
        DOCTOR, Action.READ, observation("7"), facts(consents=[team_consent()], care_relationships=relationships)
    )
    worker = POLICY.can_see(
        ctx("practitioner", "Practitioner/5"),
        Action.READ,
        observation("7"),
        facts(consents=[team_consent()], care_relationships=relationships),
    )
    stranger = POLICY.can_see(
        ctx("practitioner", "Practitioner/6"),
        Action.READ,
        observation("7"),
        facts(consents=[team_consent()], care_relationships=relationships),
    )
    assert (doctor.allowed, worker.allowed, stranger.allowed) == (True, True, False)


@pytest.mark.req("TM-15")
def test_episode_care_manager_acts_with_the_episode_teams() -> None:
    episode = {
        "resourceType": "EpisodeOfCare",
        "id": "e1",
        "status": "active",
        "patient": {"reference": "Patient/7"},
        "careManager": {"reference": "Practitioner/1"},
        "team": [{"reference": "CareTeam/team1"}],
    }
    verdict = POLICY.can_see(
        DOCTOR, Action.READ, condition("7"), facts(consents=[team_consent()], care_relationships=[episode])
    )
    assert verdict.allowed
    finished = {**episode, "status": "finished"}
    assert not POLICY.can_see(
        DOCTOR, Action.READ, condition("7"), facts(consents=[team_consent()], care_relationships=[finished])
    ).allowed


@pytest.mark.req("AC-03")
def test_organisation_actor_by_bin_covers_the_organisations_staff_and_systems() -> None:
    org_consent = consent("7", provision(None, provision("permit", actor=[actor(bin_value=ORG_BIN)])))
    staff = ctx("practitioner", "Practitioner/3", organization_bin=ORG_BIN)
    other_org = ctx("practitioner", "Practitioner/4", organization_bin="000000000000")
    system = ctx("system", None, organization_bin=ORG_BIN)
    results = [
        POLICY.can_see(c, Action.READ, condition("7"), facts(consents=[org_consent])).allowed
        for c in (staff, other_org, system)
    ]
    assert results == [True, False, True]


@pytest.mark.req("AC-09")
@pytest.mark.parametrize(
    "person",
    [
        representative("7", "guardian", verified=False),
        representative("7", "guardian", active=False),
        representative("7", "guardian", period={"end": "2024-01-01"}),
        representative("8", "guardian"),
    ],
    ids=["not-verified", "inactive", "expired", "other-patient"],
)
def test_representative_without_current_verified_authority_is_only_a_third_party(person: dict[str, Any]) -> None:
    guardian = ctx("related-person", "RelatedPerson/guardian")
    assert not POLICY.can_see(guardian, Action.READ, condition("7"), facts(representatives=[person])).allowed


@pytest.mark.req("AC-09")
def test_verified_representative_acts_for_the_patient_including_consents() -> None:
    guardian = ctx("related-person", "RelatedPerson/guardian")
    new_consent = grant("7", "Practitioner/1")
    verdict = POLICY.can_see(
        guardian, Action.CREATE, new_consent, facts(representatives=[representative("7", "guardian")])
    )
    assert verdict.allowed and verdict.grounds == ("representative",)


@pytest.mark.req("AC-09")
def test_consent_signed_by_someone_else_does_not_count() -> None:
    forged = {**grant("7", "Practitioner/1"), "performer": [{"reference": "Practitioner/1"}]}
    assert not POLICY.can_see(DOCTOR, Action.READ, condition("7"), facts(consents=[forged])).allowed
    by_rep = {**grant("7", "Practitioner/1"), "performer": [{"reference": "RelatedPerson/guardian"}]}
    allowed = POLICY.can_see(
        DOCTOR, Action.READ, condition("7"), facts(consents=[by_rep], representatives=[representative("7", "guardian")])
    )
    assert allowed.allowed


@pytest.mark.req("AC-02")
def test_break_glass_expires() -> None:
    expired = ctx("practitioner", "Practitioner/1", break_glass_reason="stroke", break_glass_until=int(NOW) - 1)
    assert not POLICY.can_see(expired, Action.READ, condition("7"), facts()).allowed


@pytest.mark.req("AC-02")
@pytest.mark.parametrize("action", [Action.DELETE, Action.EXPORT])
def test_break_glass_never_covers_deletion_or_bulk_export(action: Action) -> None:
    emergency = ctx("practitioner", "Practitioner/1", break_glass_reason="stroke", break_glass_until=int(NOW) + 60)
    assert not POLICY.can_see(emergency, action, condition("7"), facts()).allowed


@pytest.mark.req("AC-02")
def test_break_glass_is_for_practitioners_only() -> None:
    system = ctx("system", None, organization_bin=ORG_BIN, break_glass_reason="batch", break_glass_until=int(NOW) + 60)
    assert not POLICY.can_see(system, Action.READ, condition("7"), facts()).allowed


@pytest.mark.req("AC-02")
def test_break_glass_overrides_a_consent_deny() -> None:
    denial = consent("7", provision(None, provision("deny", actor=[actor("Practitioner/1")])))
    emergency = ctx("practitioner", "Practitioner/1", break_glass_reason="anaphylaxis", break_glass_until=int(NOW) + 60)
    verdict = POLICY.can_see(emergency, Action.READ, condition("7"), facts(consents=[denial]))
    assert verdict.allowed and verdict.emergency
    assert not POLICY.can_see(DOCTOR, Action.READ, condition("7"), facts(consents=[denial])).allowed


@pytest.mark.req("AC-11")
@pytest.mark.parametrize("action", [Action.CREATE, Action.UPDATE, Action.DELETE, Action.EXPORT])
def test_legal_exception_is_read_only(action: Action) -> None:
    court = ctx("legal-exception", "Practitioner/70", legal_basis="court order 1")
    assert POLICY.start(court, action, "Condition").decision is Decision.REJECT


@pytest.mark.req("AC-11")
def test_legal_exception_verdict_carries_the_basis_for_the_audit() -> None:
    court = ctx("legal-exception", "Practitioner/70", legal_basis="investigation request 77")
    verdict = POLICY.can_see(court, Action.READ, condition("7"), facts())
    assert verdict.legal_basis == "investigation request 77"


@pytest.mark.req("AC-14")
@pytest.mark.parametrize("role", ["admin", "auditor", "system", "practitioner", "patient"])
@pytest.mark.parametrize("action", [Action.CREATE, Action.UPDATE, Action.PATCH, Action.DELETE])
def test_nobody_changes_audit_events_through_the_api(role: str, action: Action) -> None:
    context = ctx(role, "Patient/7" if role == "patient" else "Practitioner/1", organization_bin=ORG_BIN)
    assert POLICY.start(context, action, "AuditEvent").decision is Decision.REJECT


@pytest.mark.req("TM-24")
def test_patient_enters_own_readings_but_not_medical_records() -> None:
    me = ctx("patient", "Patient/7")
    assert POLICY.can_see(me, Action.CREATE, observation("7"), facts()).allowed
    assert not POLICY.can_see(me, Action.CREATE, condition("7"), facts()).allowed
    assert not POLICY.can_see(me, Action.DELETE, observation("7"), facts()).allowed
    assert not POLICY.can_see(me, Action.CREATE, observation("8"), [PatientFacts("8")]).allowed


@pytest.mark.req("AC-04")
@pytest.mark.req("AC-08")
@pytest.mark.req("AC-04")
@pytest.mark.req("AC-08")
def test_workers_propose_consents_systems_record_active_ones_only_signed_by_the_patient() -> None:
    proposed = grant("7", "Practitioner/1") | {"status": "proposed"}
    active = grant("7", "Practitioner/1")
    system = ctx("system", None, organization_bin=ORG_BIN)
    assert POLICY.can_see(DOCTOR, Action.CREATE, proposed, facts()).allowed
    assert POLICY.can_see(system, Action.CREATE, proposed, facts()).allowed
    assert not POLICY.can_see(DOCTOR, Action.CREATE, active, facts()).allowed
    unsigned = POLICY.can_see(system, Action.CREATE, active, facts())
    assert not unsigned.allowed and "signed" in unsigned.reason
    owner = [PatientFacts("7", identifiers=frozenset({"850315300019"}))]
    assert POLICY.can_see(system, Action.CREATE, active, owner, signers=frozenset({"850315300019"})).allowed
    assert not POLICY.can_see(system, Action.CREATE, active, owner, signers=frozenset({"900101300011"})).allowed
    # break-glass never writes a Consent; nor does another Consent that grants the caller "collect"
    emergency = ctx("practitioner", "Practitioner/1", break_glass_reason="x", break_glass_until=2**40)
    assert not POLICY.can_see(emergency, Action.CREATE, active, facts()).allowed
    actions = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": code}]}
               for code in ("collect", "correct")]
    collect = grant("7", "Practitioner/1", action=actions)
    assert not POLICY.can_see(DOCTOR, Action.CREATE, active, [PatientFacts("7", consents=(collect,))]).allowed
    assert not POLICY.can_see(DOCTOR, Action.UPDATE, active, [PatientFacts("7", consents=(collect,))]).allowed


@pytest.mark.req("AC-01")
def test_shared_resource_needs_every_patients_consent() -> None:
    shared = {
        "resourceType": "Communication",
        "id": "m1",
        "subject": {"reference": "Patient/7"},
        "recipient": [{"reference": "Patient/8"}],
    }
    only_seven = [PatientFacts("7", consents=(grant("7", "Practitioner/1"),)), PatientFacts("8")]
    both = [
        PatientFacts("7", consents=(grant("7", "Practitioner/1"),)),
        PatientFacts("8", consents=(grant("8", "Practitioner/1"),)),
    ]
    assert not POLICY.can_see(DOCTOR, Action.READ, shared, only_seven).allowed
    assert POLICY.can_see(DOCTOR, Action.READ, shared, both).allowed


@pytest.mark.req("AC-12")
def test_missing_facts_for_a_patient_mean_reject() -> None:
    verdict = POLICY.can_see(DOCTOR, Action.READ, condition("7"), [])
    assert verdict.decision is Decision.REJECT and "Patient/7" in verdict.reason


def test_patient_scopes_reach_only_the_patient_in_context() -> None:
    launched = ctx("practitioner", "Practitioner/1", scopes=("patient/*.rs",), launch_patient="Patient/7")
    seven = [PatientFacts("7", consents=(grant("7", "Practitioner/1"),))]
    eight = [PatientFacts("8", consents=(grant("8", "Practitioner/1"),))]
    assert POLICY.can_see(launched, Action.READ, condition("7"), seven).allowed
    assert not POLICY.can_see(launched, Action.READ, condition("8"), eight).allowed


def test_scopes_gate_every_type_including_included_resources() -> None:
    narrow = ctx("practitioner", "Practitioner/1", scopes=("user/Observation.rs",))
    assert POLICY.start(narrow, Action.SEARCH, "Observation").decision is Decision.PROCEED
    everything = [PatientFacts("7", consents=(grant("7", "Practitioner/1"),))]
    assert not POLICY.can_see(narrow, Action.READ, condition("7"), everything).allowed


def test_auditor_does_not_get_included_patients() -> None:
    auditor = ctx("auditor", "Practitioner/50")
    assert POLICY.start(auditor, Action.SEARCH, "AuditEvent").decision is Decision.AUTHORIZED
    patient = {"resourceType": "Patient", "id": "7"}
    assert not POLICY.can_see(auditor, Action.READ, patient, [PatientFacts("7")]).allowed
    assert POLICY.start(auditor, Action.OPERATION, "Patient", operation="access-log").allowed


@pytest.mark.req("AC-15")
def test_admin_handles_data_subject_requests_but_no_other_tasks() -> None:
    admin = ctx("admin", "Practitioner/60")
    request = {
        "resourceType": "Task",
        "id": "t1",
        "status": "requested",
        "intent": "order",
        "code": {"coding": [{"system": DSR_TASK_SYSTEM, "code": "access"}]},
        "for": {"reference": "Patient/7"},
    }
    clinical = {**request, "code": {"coding": [{"system": "http://snomed.info/sct", "code": "1"}]}}
    assert POLICY.can_see(admin, Action.UPDATE, request, facts()).allowed
    assert not POLICY.can_see(admin, Action.READ, clinical, facts()).allowed


def test_only_systems_and_admins_change_directory_resources() -> None:
    practitioner = {"resourceType": "Practitioner", "id": "9"}
    assert not POLICY.can_see(DOCTOR, Action.UPDATE, practitioner).allowed
    assert POLICY.can_see(ctx("system", None, organization_bin=ORG_BIN), Action.UPDATE, practitioner).allowed


def test_caller_reads_own_record() -> None:
    aunt = ctx("related-person", "RelatedPerson/aunt")
    own = {"resourceType": "RelatedPerson", "id": "aunt", "patient": {"reference": "Patient/7"}}
    assert POLICY.can_see(aunt, Action.READ, own, facts()).allowed


@pytest.mark.req("AC-12")
def test_unauthenticated_or_unknown_role_is_rejected_everywhere() -> None:
    from fhir_server.security.context import RequestContext

    assert POLICY.start(RequestContext(), Action.READ, "Practitioner").decision is Decision.REJECT
    odd = ctx("superuser", "Practitioner/1")
    assert POLICY.can_see(odd, Action.READ, {"resourceType": "Practitioner", "id": "1"}).decision is Decision.REJECT


def test_total_is_kept_only_when_no_per_resource_filtering_applies() -> None:
    assert total_allowed(POLICY.start(ctx("auditor", "Practitioner/50"), Action.SEARCH, "AuditEvent"))
    assert not total_allowed(POLICY.start(DOCTOR, Action.SEARCH, "Observation"))


class CountingLoader:
    def __init__(self, consents: list[dict[str, Any]]) -> None:
        self.calls = 0
        self._consents = consents

    async def consents(self, patient_id: str) -> list[dict[str, Any]]:
        self.calls += 1
        return list(self._consents)

    async def care_relationships(self, patient_id: str) -> list[dict[str, Any]]:
        return []

    async def representatives(self, patient_id: str) -> list[dict[str, Any]]:
        return []

    async def identifiers(self, patient_id: str) -> frozenset[str]:
        return frozenset()

    async def blocks(self, patient_id: str) -> list[dict[str, Any]]:
        return []


@pytest.mark.req("AC-01")
async def test_revocation_takes_effect_on_the_next_request() -> None:
    stored = [grant("7", "Practitioner/1")]
    loader = CountingLoader(stored)
    first_request = FactsCache(loader)
    for oid in ("o1", "o2", "o3"):
        facts_now = await first_request.get_many(["7"])
        assert POLICY.can_see(DOCTOR, Action.READ, observation("7", oid), facts_now).allowed
    assert loader.calls == 1  # one load per patient per request
    stored[0] = stored[0] | {"status": "inactive"}  # the patient revokes
    second_request = FactsCache(loader)
    assert not POLICY.can_see(DOCTOR, Action.READ, observation("7"), await second_request.get_many(["7"])).allowed
