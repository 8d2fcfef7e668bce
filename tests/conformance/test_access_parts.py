"""The pure parts of the access and vendor-data checks: what counts as disclosed, how a record is tied
to an access, which minimal-data item a record lacks."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.access.journal import Access
from conformance.access.leaks import differs, hidden_in, leaked
from conformance.access.records import is_emergency, match
from conformance.examples import valid_example
from conformance.minimal_data import md_b_gaps, md_d_gaps
from conformance.sampling import mask

PATIENT = "Patient/p1"


def _answer(body: object, url: str = "http://x.kz/fhir/Observation", status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body, request=httpx.Request("GET", url))


def test_hidden_resources_are_found_inside_nested_batch_searches_and_by_reference() -> None:
    search = {"resourceType": "Bundle", "type": "searchset",
              "entry": [{"resource": {"resourceType": "Observation", "id": "o9", "subject": {"reference": PATIENT}}}]}
    batch = {"resourceType": "Bundle", "type": "batch-response",
             "entry": [{"resource": search}, {"resource": {"resourceType": "Patient", "id": "p1"}},
                       {"resource": {"resourceType": "Practitioner", "id": "d1"}}]}
    assert hidden_in(batch, {PATIENT}, PATIENT) == ["Observation/o9", "Patient/p1"]
    outcome = {"resourceType": "OperationOutcome", "issue": [{"diagnostics": "Patient/p1"}]}
    assert hidden_in(outcome, {PATIENT}, PATIENT) == []


def test_an_error_text_naming_the_patient_is_a_leak_unless_the_caller_named_it() -> None:
    refusal = {"resourceType": "OperationOutcome", "issue": [{"diagnostics": "no consent of Patient/p1"}]}
    assert leaked(_answer(refusal, "http://x.kz/fhir/Observation/o1", 403), {"id": "p1"}) == ["id"]
    assert leaked(_answer(refusal, "http://x.kz/fhir/Patient/p1", 403), {"id": "p1"}) == []


@settings(max_examples=50, deadline=None)
@given(value=st.text(alphabet="abcdef0123456789-", min_size=4, max_size=20))
def test_a_value_the_request_carries_is_never_counted_as_disclosed(value: str) -> None:
    answer = _answer({"echo": value}, f"http://x.kz/fhir/Observation?subject=Patient/{value}")
    assert leaked(answer, {"value": value}) == []


def test_answers_differ_by_status_total_or_entries_not_by_text() -> None:
    empty = {"resourceType": "Bundle", "type": "searchset", "link": [{"url": "a"}]}
    other = {"resourceType": "Bundle", "type": "searchset", "link": [{"url": "b"}]}
    assert differs(_answer(empty), _answer(other)) is None
    assert differs(_answer({**empty, "total": 1}), _answer({**empty, "total": 0})) == (
        "total 1 with a hidden match, 0 with none")
    assert differs(_answer(empty, status=403), _answer(empty)) == "HTTP 403 with a hidden match, 200 with none"


def _access(request_id: str, *, emergency: bool = False, target: str = "Observation/o1") -> Access:
    return Access("unconsented Practitioner/d2", "Practitioner/d2", f"GET {target}", request_id, 200,
                  datetime.now(UTC), target, emergency=emergency)


def test_records_are_tied_to_accesses_by_request_id_and_emergencies_take_the_marked_one() -> None:
    notice = {"resourceType": "AuditEvent", "entity": [{"what": {"identifier": {"value": "kzck-2"}}}]}
    btg = {**copy.deepcopy(notice), "purposeOfEvent": [{"coding": [{"code": "BTG"}]}]}
    found = match([notice, btg], [_access("kzck-1"), _access("kzck-2", emergency=True)])
    assert list(found) == [1] and is_emergency(found[1])


def test_without_request_ids_a_record_naming_caller_and_resource_serves_one_access() -> None:
    record = {"resourceType": "AuditEvent", "recorded": datetime.now(UTC).isoformat(),
              "agent": [{"who": {"reference": "Practitioner/d2"}}],
              "entity": [{"what": {"reference": "Observation/o1"}}]}
    assert list(match([record], [_access("kzck-1"), _access("kzck-2")])) == [0]
    assert list(match([record], [_access("kzck-1"), _access("kzck-2")], exclusive=False)) == [0, 1]


def test_minimal_data_sets_name_the_missing_items() -> None:
    appointment = valid_example("Appointment/kz-appointment-1") or {}
    patient = valid_example("Patient/kz-patient-1")
    people = {"Patient/kz-patient-1": patient, "Practitioner/kz-practitioner-1":
              valid_example("Practitioner/kz-practitioner-1")}
    assert md_b_gaps(appointment, people) == []
    bare = {k: v for k, v in appointment.items() if k not in ("serviceType", "start")}
    assert md_b_gaps(bare, people) == ["MD-B 2: no service code with its name (serviceType)",
                                       "MD-B 4: no date and time (start)"]
    encounter = valid_example("Encounter/kz-encounter-1") or {}
    assert md_d_gaps(encounter, people) == []
    assert md_d_gaps({**encounter, "extension": []}, {}) == [
        "MD-D 1: no form of the remote service", "MD-D 2: no telecommunication means",
        "MD-D 3: the patient record cannot be read", "MD-D 5: the doctor record cannot be read"]


def test_identifiers_are_masked_to_their_last_four_digits() -> None:
    assert mask("IIN 850315300019 invalid; BIN 940140000385") == "IIN ••••••••0019 invalid; BIN ••••••••0385"


def test_the_scenario_surnames_never_collide_with_each_other_or_the_ig_examples() -> None:
    """A patient's surname is a leak marker: a visible practitioner or IG example bearing it (or a name
    containing it) would read as a leak."""
    import json

    from conformance.access.scenario import _FAMILIES, _GIVEN
    from conformance.examples import valid_example, valid_refs

    examples = " ".join(json.dumps(valid_example(ref), ensure_ascii=False) for ref in valid_refs())
    names = [*_FAMILIES, *(f + "а" for f in _FAMILIES), *(g for gs in _GIVEN.values() for g in gs)]
    assert [f for f in _FAMILIES if f in examples] == []
    assert [(f, n) for f in _FAMILIES for n in names if f in n and not n.startswith(f)] == []
    assert len(set(_FAMILIES)) == len(_FAMILIES) >= 4
