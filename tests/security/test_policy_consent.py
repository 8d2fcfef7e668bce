"""R4 Consent semantics as the engine reads them: nesting, conditions, combination, issues."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.security.policy import (
    AccessRequest,
    Ruling,
    consent_issues,
    describe_resource,
    evaluate_consent,
    evaluate_consents,
)
from tests.security.security_builders import NOW, actor, classes, coding_list, consent, observation, provision

ACCESS = frozenset({"access", "use"})
DOCTOR = frozenset({"Practitioner/1"})
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"


def ask(
    resource: dict[str, Any],
    *,
    actors: frozenset[str] = DOCTOR,
    actions: frozenset[str] = ACCESS,
    purpose: str = "TREAT",
) -> AccessRequest:
    return AccessRequest(actors, actions, purpose, resource["resourceType"], NOW, describe_resource(resource))


def permit_doctor(*children: dict[str, Any], **conditions: Any) -> dict[str, Any]:
    return consent("7", provision(None, provision("permit", *children, actor=[actor("Practitioner/1")], **conditions)))


@pytest.mark.req("AC-10")
def test_nested_deny_carves_an_exception_out_of_a_permit() -> None:
    document = permit_doctor(provision("deny", code=[{"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}]))
    assert evaluate_consent(document, ask(observation("7"))) is Ruling.DENY
    other = observation("7", code={"coding": [{"system": "http://loinc.org", "code": "1111-1"}]})
    assert evaluate_consent(document, ask(other)) is Ruling.PERMIT


def test_permit_nested_in_deny_is_an_exception_to_the_exception() -> None:
    inner_permit = provision("permit", purpose=coding_list(ACT_REASON, "ETREAT"))
    document = permit_doctor(provision("deny", inner_permit, **{"class": classes("Observation")}))
    assert evaluate_consent(document, ask(observation("7"))) is Ruling.DENY
    assert evaluate_consent(document, ask(observation("7"), purpose="ETREAT")) is Ruling.PERMIT


def test_disagreeing_siblings_resolve_to_deny() -> None:
    document = consent(
        "7",
        provision(
            None,
            provision("permit", actor=[actor("Practitioner/1")]),
            provision("deny", **{"class": classes("Observation")}),
        ),
    )
    assert evaluate_consent(document, ask(observation("7"))) is Ruling.DENY


def test_opt_out_root_denies_what_it_names() -> None:
    document = consent("7", provision(None, actor=[actor("Practitioner/1")]), policy_rule="OPTOUT")
    assert evaluate_consent(document, ask(observation("7"))) is Ruling.DENY
    assert evaluate_consent(document, ask(observation("7"), actors=frozenset({"Practitioner/2"}))) is None
    assert evaluate_consent(consent("7", None, policy_rule="OPTOUT"), ask(observation("7"))) is Ruling.DENY


@pytest.mark.req("AC-12")
def test_opt_in_without_permit_provisions_grants_nothing() -> None:
    assert evaluate_consent(consent("7", None), ask(observation("7"))) is None
    assert (
        evaluate_consent(consent("7", provision(None, period={"start": "2020-01-01"})), ask(observation("7"))) is None
    )


def test_root_type_is_honoured_though_r4_does_not_allow_it() -> None:
    document = consent("7", provision("permit", actor=[actor("Practitioner/1")]))
    assert evaluate_consent(document, ask(observation("7"))) is Ruling.PERMIT
    assert any("root" in issue.diagnostics for issue in consent_issues(document))


def test_nested_provision_without_type_reads_as_deny() -> None:
    document = permit_doctor(provision(None, **{"class": classes("Observation")}))
    assert evaluate_consent(document, ask(observation("7"))) is Ruling.DENY
    assert any(
        issue.is_error and issue.expression == "Consent.provision.provision[0].provision[0].type"
        for issue in consent_issues(document)
    )


def test_action_codes_separate_reading_from_writing() -> None:
    document = permit_doctor(
        action=[{"coding": coding_list("http://terminology.hl7.org/CodeSystem/consentaction", "access")}]
    )
    assert evaluate_consent(document, ask(observation("7"))) is Ruling.PERMIT
    assert evaluate_consent(document, ask(observation("7"), actions=frozenset({"collect"}))) is None


def test_purpose_must_match_the_request_purpose() -> None:
    document = permit_doctor(purpose=coding_list(ACT_REASON, "TREAT"))
    assert evaluate_consent(document, ask(observation("7"))) is Ruling.PERMIT
    assert evaluate_consent(document, ask(observation("7"), purpose="HRESCH")) is None


def test_class_matches_resource_type_or_profile() -> None:
    profile = "https://fhir.kzfhir.kz/StructureDefinition/kz-vital-signs"
    document = permit_doctor(**{"class": [{"code": profile}]})
    tagged = observation("7", meta={"profile": [profile]})
    assert evaluate_consent(document, ask(tagged)) is Ruling.PERMIT
    assert evaluate_consent(document, ask(observation("7"))) is None


@pytest.mark.parametrize(
    ("effective", "expected"),
    [("2025-03-01T00:00:00Z", Ruling.PERMIT), ("2023-12-31", None), ("2024", None)],
)
def test_data_period_bounds_the_clinical_date(effective: str, expected: Ruling | None) -> None:
    document = permit_doctor(dataPeriod={"start": "2024-06-01", "end": "2025-12-31"})
    assert evaluate_consent(document, ask(observation("7", effectiveDateTime=effective))) is expected


def test_data_period_falls_back_to_last_updated_and_never_matches_undated_data() -> None:
    document = permit_doctor(dataPeriod={"start": "2025-01-01"})
    undated = observation("7")
    del undated["effectiveDateTime"]
    assert evaluate_consent(document, ask(undated)) is None
    undated["meta"] = {"lastUpdated": "2025-02-02T10:00:00Z"}
    assert evaluate_consent(document, ask(undated)) is Ruling.PERMIT


@pytest.mark.req("AC-10")
def test_security_label_deny_hides_restricted_resources() -> None:
    restricted = {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}
    document = permit_doctor(provision("deny", securityLabel=[restricted]))
    labelled = observation("7", meta={"security": [restricted]})
    assert evaluate_consent(document, ask(labelled)) is Ruling.DENY
    assert evaluate_consent(document, ask(observation("7"))) is Ruling.PERMIT


def test_data_instance_permits_exactly_that_resource() -> None:
    document = permit_doctor(data=[{"meaning": "instance", "reference": {"reference": "Observation/o1"}}])
    assert evaluate_consent(document, ask(observation("7", "o1"))) is Ruling.PERMIT
    assert evaluate_consent(document, ask(observation("7", "o2"))) is None


def test_only_active_privacy_consents_of_the_patient_count() -> None:
    granted = permit_doctor()
    treatment = granted | {"scope": {"coding": [{"code": "treatment"}]}}
    other_patient = granted | {"patient": {"reference": "Patient/8"}}
    draft = granted | {"status": "draft"}
    for document in (treatment, other_patient, draft):
        assert evaluate_consents([document], ask(observation("7")), "7", frozenset()) == (None, ())
    assert evaluate_consents([granted], ask(observation("7")), "7", frozenset()) == (Ruling.PERMIT, ("Consent/c1",))


@pytest.mark.req("AC-12")
def test_a_deny_in_any_consent_overrides_permits_in_others() -> None:
    permit = permit_doctor()
    deny = consent("7", provision(None, provision("deny", actor=[actor("Practitioner/1")])), cid="c2")
    assert evaluate_consents([permit, deny], ask(observation("7")), "7", frozenset()) == (Ruling.DENY, ("Consent/c2",))


def test_consent_issues_report_unreadable_dates_and_anonymous_actors() -> None:
    document = consent(
        "7",
        provision(
            None,
            provision("permit", actor=[{"role": {"text": "x"}, "reference": {"display": "someone"}}]),
            period={"end": "31.12.2025"},
        ),
        status="proposed",
    )
    messages = {issue.expression: issue.severity for issue in consent_issues(document)}
    assert messages["Consent.provision.period.end"] == "error"
    assert messages["Consent.provision.provision[0].actor[0]"] == "error"
    assert messages["Consent.status"] == "information"
    assert consent_issues(permit_doctor()) == []
