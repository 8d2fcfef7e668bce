"""BALP AuditEvent shape, the patient's access-log view and the break-glass notice."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from fhir_server.security.audit import (
    SERIOUS_FAILURE,
    AuditSource,
    AuditTarget,
    access_log_entry,
    break_glass_notice,
    denied_event,
    failed_authentication_event,
    interaction_for,
    rest_event,
    rest_events,
)
from fhir_server.security.context import RequestContext
from fhir_server.security.policy import Action, Decision, Verdict

DOCTOR = RequestContext(
    request_id="req-1",
    client_ip="192.0.2.10",
    subject="user-1",
    fhir_user="Practitioner/1",
    role="practitioner",
    organization_bin="940140000385",
    purpose_of_use="TREAT",
    authenticated=True,
    client_id="mis-app",
    token_id="jti-1",
)
READ = AuditTarget("read", "Observation", "o1", "3", patient_id="7")
GRANTED = Verdict(Decision.AUTHORIZED, "granted by the patient's consent", ("consent",), ("Consent/c1",))


def _agent(event: dict[str, Any], code: str) -> dict[str, Any]:
    return next(a for a in event["agent"] if a["type"]["coding"][0]["code"] == code)


def _entity(event: dict[str, Any], role: str) -> dict[str, Any]:
    return next(e for e in event["entity"] if e.get("role", {}).get("code") == role)


def _structure_issues(resource: dict[str, Any]) -> list[Any]:
    validation = pytest.importorskip("fhir_server.validation")
    return [issue for issue in validation.get_structure_validator().validate(resource) if issue.is_error]


@pytest.mark.req("AC-14")
def test_read_event_records_who_what_when_where_and_patient() -> None:
    event = rest_event(DOCTOR, READ, GRANTED, source=AuditSource(observer="kzfhir-1", server_address="10.0.0.5"))
    assert event["resourceType"] == "AuditEvent"
    assert event["meta"]["profile"] == [
        "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead"
    ]
    assert (event["type"]["code"], event["subtype"][0]["code"], event["action"], event["outcome"]) == (
        "rest",
        "read",
        "R",
        "0",
    )
    assert event["recorded"].endswith("Z")
    user = _agent(event, "IRCP")
    assert user["who"] == {"reference": "Practitioner/1"} and user["requestor"] is True
    assert user["role"][0]["coding"][0]["code"] == "practitioner"
    assert user["policy"] == ["urn:ietf:params:oauth:jti:jti-1"]
    client = _agent(event, "110152")  # reads: the client is the Destination Role ID
    assert client["network"] == {"address": "192.0.2.10", "type": "2"}
    assert _agent(event, "110153")["who"] == {"display": "kzfhir-1"}
    assert _agent(event, "PROV")["who"]["identifier"]["value"] == "940140000385"
    assert _entity(event, "4")["what"] == {"reference": "Observation/o1/_history/3"}
    assert _entity(event, "1")["what"] == {"reference": "Patient/7"}
    assert any(e["what"] == {"reference": "Consent/c1"} for e in event["entity"])
    assert event["entity"][0]["what"]["identifier"]["value"] == "req-1"
    assert _structure_issues(event) == []


@pytest.mark.req("AC-14")
def test_search_events_keep_the_raw_query_and_split_per_patient() -> None:
    target = AuditTarget(interaction_for(Action.SEARCH, level="type"), "Observation", query="code=8867-4&_count=50")
    events = rest_events(DOCTOR, target, ["8", "7", "7"])
    assert [_entity(e, "1")["what"]["reference"] for e in events] == ["Patient/7", "Patient/8"]
    query = _entity(events[0], "24")
    assert base64.b64decode(query["query"]).decode() == "code=8867-4&_count=50"
    assert events[0]["action"] == "E" and events[0]["subtype"][0]["code"] == "search-type"
    assert _agent(events[0], "110153")["who"] == {"identifier": {"value": "mis-app"}}  # queries: client is Source
    assert events[0]["meta"]["profile"][0].endswith("PatientQuery")


@pytest.mark.req("AC-14")
def test_denied_access_is_audited_with_outcome_4_and_the_reason() -> None:
    event = denied_event(DOCTOR, READ, "no consent of Patient/7 grants this access (AC-12)")
    assert event["outcome"] == "4"
    assert event["outcomeDesc"] == "no consent of Patient/7 grants this access (AC-12)"
    assert "meta" not in event  # BALP success profiles do not apply to failures
    assert _structure_issues(event) == []


@pytest.mark.req("AC-14")
def test_failed_authentication_is_audited_without_an_identity() -> None:
    event = failed_authentication_event("token has expired", client_ip="198.51.100.7", request_id="req-9")
    assert (event["type"]["code"], event["subtype"][0]["code"], event["outcome"]) == ("110114", "110122", "4")
    assert event["outcomeDesc"] == "token has expired"
    assert [a["who"] for a in event["agent"]] == [{"display": "unauthenticated client"}]
    assert event["agent"][0]["network"]["address"] == "198.51.100.7"
    assert _structure_issues(event) == []


def test_server_failure_is_outcome_8() -> None:
    event = rest_event(DOCTOR, AuditTarget("create", "Observation"), outcome=SERIOUS_FAILURE, description="disk full")
    assert (event["outcome"], event["action"], event["outcomeDesc"]) == ("8", "C", "disk full")


@pytest.mark.req("AC-02")
def test_break_glass_event_carries_btg_purpose_and_the_reason() -> None:
    emergency = RequestContext(
        fhir_user="Practitioner/2", role="practitioner", break_glass_reason="unconscious", authenticated=True
    )
    verdict = Verdict(Decision.AUTHORIZED, "break-glass: unconscious", ("break-glass",), emergency=True)
    event = rest_event(emergency, READ, verdict)
    purposes = [p["coding"][0]["code"] for p in event["purposeOfEvent"]]
    assert purposes == ["ETREAT", "BTG"]
    assert event["entity"][0]["detail"] == [{"type": "break-glass-reason", "valueString": "unconscious"}]


@pytest.mark.req("AC-11")
def test_legal_exception_event_records_the_legal_basis() -> None:
    court = RequestContext(fhir_user="Practitioner/70", role="legal-exception", authenticated=True)
    verdict = Verdict(Decision.AUTHORIZED, "legal exception", ("legal-exception",), legal_basis="order 5")
    event = rest_event(court, READ, verdict)
    assert [p["coding"][0]["code"] for p in event["purposeOfEvent"]] == ["HLEGAL"]
    assert event["entity"][0]["detail"] == [{"type": "legal-basis", "valueString": "order 5"}]


def test_on_behalf_of_is_recorded_as_the_responsible_party() -> None:
    delegate = RequestContext(
        fhir_user="RelatedPerson/r1", role="related-person", on_behalf_of="Patient/7", authenticated=True
    )
    event = rest_event(delegate, READ, GRANTED)
    assert _agent(event, "RESP")["who"] == {"reference": "Patient/7"}


@pytest.mark.parametrize(
    ("action", "level", "code"),
    [
        (Action.READ, "instance", "read"),
        (Action.VREAD, "instance", "vread"),
        (Action.HISTORY, "type", "history-type"),
        (Action.SEARCH, "system", "search-system"),
        (Action.PATCH, "instance", "patch"),
        (Action.EXPORT, "system", "operation"),
    ],
)
def test_interaction_codes_follow_restful_interaction(action: Action, level: str, code: str) -> None:
    assert interaction_for(action, level=level) == code


@pytest.mark.req("AC-24")
@pytest.mark.req("TM-18")
def test_access_log_entry_shows_who_why_and_what_but_no_network_details() -> None:
    emergency = RequestContext(
        fhir_user="Practitioner/2",
        role="practitioner",
        organization_bin="940140000385",
        break_glass_reason="unconscious",
        client_ip="192.0.2.99",
        token_id="secret-jti",
        authenticated=True,
    )
    verdict = Verdict(Decision.AUTHORIZED, "break-glass", ("break-glass",), emergency=True)
    entry = access_log_entry(rest_event(emergency, READ, verdict))
    assert entry["who"] == "Practitioner/2" and entry["role"] == "practitioner"
    assert entry["organization"] == "940140000385"
    assert (entry["action"], entry["what"], entry["outcome"]) == ("read", ["Observation/o1/_history/3"], "success")
    assert entry["emergency"] is True and entry["breakGlassReason"] == "unconscious"
    assert "192.0.2.99" not in json.dumps(entry) and "secret-jti" not in json.dumps(entry)


@pytest.mark.req("AC-24")
def test_access_log_entry_shows_refused_attempts_with_the_reason() -> None:
    entry = access_log_entry(denied_event(DOCTOR, READ, "no consent"))
    assert (entry["outcome"], entry["reason"], entry["emergency"]) == ("refused", "no consent", False)


@pytest.mark.req("AC-02")
@pytest.mark.req("AC-18")
def test_break_glass_notice_is_a_valid_communication_to_the_patient() -> None:
    emergency = RequestContext(fhir_user="Practitioner/2", role="practitioner", break_glass_reason="coma")
    notice = break_glass_notice(emergency, "7", ["Observation/o1"], sent=1_750_000_000.0)
    assert notice["recipient"] == [{"reference": "Patient/7"}]
    assert "coma" in notice["payload"][0]["contentString"]
    assert _structure_issues(notice) == []
