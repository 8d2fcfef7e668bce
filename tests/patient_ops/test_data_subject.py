"""Data-subject requests (AC-15, AC-16, AC-17, AC-27): Tasks due in 3 Kazakhstan working days,
the admins' overdue queue, reasoned refusals, and the ``$data-report`` answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from fhir_server.operations import dsr_tasks
from fhir_server.security.calendar import KZ_TZ
from tests.patient_ops.conftest import MIS, OpenWorld, World

REQUEST = "/Patient/p1/$data-subject-request"


class FakeClock:
    def __init__(self) -> None:
        self.at = datetime(2025, 3, 20, 10, 0, tzinfo=KZ_TZ)  # Thursday before Nauryz

    def set(self, text: str) -> None:
        self.at = datetime.fromisoformat(text)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    fake = FakeClock()
    monkeypatch.setattr(dsr_tasks.CLOCK, "now", lambda: fake.at)
    yield fake


def _p(name: str, kind: str, value: Any) -> dict[str, Any]:
    return {"name": name, kind: value}


async def _file(world: World, headers: dict[str, str], kind: str = "information", *extra: dict[str, Any],
                path: str = REQUEST) -> dict[str, Any]:
    r = await world.post(path, headers, [_p("kind", "valueCode", kind), *extra])
    assert r.status_code == 201, r.text
    task: dict[str, Any] = r.json()
    assert r.headers["location"].endswith(f"/Task/{task['id']}/_history/1")
    return task


async def _overdue_ids(world: World) -> list[str]:
    r = await world.get("/$dsr-overdue", world.auth("admin", "Practitioner/dr2"))
    assert r.status_code == 200, r.text
    return [e["resource"]["id"] for e in r.json().get("entry", [])]


@pytest.mark.req("AC-15")
@pytest.mark.req("AC-16")
async def test_request_is_due_three_working_days_later_across_nauryz(world: World, clock: FakeClock) -> None:
    task = await _file(world, world.auth("patient", "Patient/p1"), "information",
                       _p("description", "valueString", "What do you hold about me?"))
    assert task["status"] == "requested"
    assert task["for"] == {"reference": "Patient/p1"}
    assert task["requester"] == {"reference": "Patient/p1"}
    assert task["authoredOn"] == "2025-03-20T10:00:00+05:00"
    # 21-25 March are days off (Nauryz and its observed days): due at the end of Friday 28 March
    assert task["restriction"]["period"]["end"] == "2025-03-28T23:59:59+05:00"
    assert task["code"]["coding"][0]["code"] == "information"


@pytest.mark.req("AC-16")
@pytest.mark.req("AC-27")
async def test_open_request_shows_as_overdue_for_admins_only_after_its_due_date(world: World,
                                                                               clock: FakeClock) -> None:
    task = await _file(world, world.auth("patient", "Patient/p1"), "correction",
                       _p("change", "valueString", "My blood group is A(II), not B(III)"))
    assert task["input"][0]["valueString"] == "My blood group is A(II), not B(III)"
    clock.set("2025-03-28T23:00:00+05:00")
    assert task["id"] not in await _overdue_ids(world)
    clock.set("2025-03-29T00:00:01+05:00")
    assert await _overdue_ids(world) == [task["id"]]
    assert (await world.get("/$dsr-overdue", world.auth("patient", "Patient/p1"))).status_code == 403
    assert (await world.get("/$dsr-overdue", world.auth("auditor", "Practitioner/dr2"))).status_code == 403


@pytest.mark.req("AC-17")
async def test_refusal_needs_a_reason_and_keeps_it(world: World, clock: FakeClock) -> None:
    task = await _file(world, world.auth("related-person", "RelatedPerson/rp1"))
    assert task["requester"] == {"reference": "RelatedPerson/rp1"}
    admin = world.auth("admin", "Practitioner/dr2")
    answer = f"/Task/{task['id']}/$dsr-answer"

    bare = await world.post(answer, admin, [_p("outcome", "valueCode", "rejected")])
    assert bare.status_code == 422
    assert bare.json()["issue"][0]["expression"] == ["reason"]

    clock.set("2025-03-24T12:00:00+05:00")
    reason = "No identity document was presented for the representative"
    refusal = [_p("outcome", "valueCode", "rejected"), _p("reason", "valueString", reason)]
    r = await world.post(answer, admin, refusal)
    assert r.status_code == 200, r.text
    stored = (await world.client.get(f"/Task/{task['id']}", headers=admin)).json()
    assert stored["status"] == "rejected"
    assert stored["statusReason"]["text"] == reason
    assert stored["businessStatus"]["text"] == "answered on time"
    assert stored["meta"]["versionId"] == "2"
    assert task["id"] not in await _overdue_ids(world)
    again = await world.post(answer, admin, [_p("outcome", "valueCode", "completed")])
    assert again.status_code == 409
    # the patient is told their request was answered (AC-18)
    notes = (await world.get("/Patient/p1/$notifications", world.auth("patient", "Patient/p1"))).json()
    assert any(f"Task/{task['id']}/_history/2" in c["resource"]["payload"][0]["contentString"]
               for c in notes["entry"])


@pytest.mark.req("AC-27")
async def test_only_admins_answer_and_a_correction_must_say_what_to_correct(world: World,
                                                                            clock: FakeClock) -> None:
    patient = world.auth("patient", "Patient/p1")
    vague = await world.post(REQUEST, patient, [_p("kind", "valueCode", "correction")])
    assert vague.status_code == 400
    task = await _file(world, patient, "correction", _p("description", "valueString", "Wrong address"),
                       _p("focus", "valueReference", {"reference": "Patient/p1"}))
    answer = f"/Task/{task['id']}/$dsr-answer"
    assert (await world.post(answer, patient, [_p("outcome", "valueCode", "completed")])).status_code == 403
    r = await world.post(answer, world.auth("admin", "Practitioner/dr2"),
                         [_p("outcome", "valueCode", "completed"),
                          _p("note", "valueString", "Address corrected")])
    assert r.status_code == 200
    assert r.json()["output"][0]["valueString"] == "Address corrected"


@pytest.mark.req("AC-15")
async def test_admin_registers_a_paper_request_with_its_receipt_date(world: World, clock: FakeClock) -> None:
    received = _p("received", "valueDateTime", "2025-03-20T09:00:00+05:00")
    clock.set("2025-03-27T10:00:00+05:00")
    task = await _file(world, world.auth("admin", "Practitioner/dr2"), "information", received)
    assert task["authoredOn"] == "2025-03-20T09:00:00+05:00"
    assert task["restriction"]["period"]["end"] == "2025-03-28T23:59:59+05:00"
    assert task["requester"] == {"reference": "Patient/p1"}
    admin = world.auth("admin", "Practitioner/dr2")
    info = _p("kind", "valueCode", "information")
    future = _p("received", "valueDateTime", "2025-04-01T09:00:00+05:00")
    assert (await world.post(REQUEST, admin, [info, future])).status_code == 400
    stranger = _p("requester", "valueReference", {"reference": "Patient/p2"})
    assert (await world.post(REQUEST, admin, [info, stranger])).status_code == 400
    patient = world.auth("patient", "Patient/p1")
    backdated = await world.post(REQUEST, patient, [_p("kind", "valueCode", "information"), received])
    assert backdated.status_code == 400
    other = world.auth("patient", "Patient/p2")  # Patient/p1 is not visible to p2: unknown (hidden means absent)
    assert (await world.post(REQUEST, other, [_p("kind", "valueCode", "information")])).status_code == 404
    assert (await world.get(REQUEST, patient)).status_code == 405


@pytest.mark.req("AC-16")
async def test_operator_calendar_override_moves_the_due_date(open_world: OpenWorld, clock: FakeClock,
                                                             tmp_path: Path) -> None:
    override = tmp_path / "calendar.json"
    decree = {"year": 2025, "extra_days_off": [{"date": "2025-03-27", "name": "decree"}]}
    override.write_text(json.dumps(decree))
    async with open_world(calendar_override=override) as world:
        task = await _file(world, world.auth("patient", "Patient/p1"))
    assert task["restriction"]["period"]["end"] == "2025-03-31T23:59:59+05:00"


def test_write_rules_refuse_a_refusal_without_reason_on_any_route() -> None:
    task = {"resourceType": "Task", "status": "rejected", "intent": "order",
            "code": {"coding": [{"system": "https://fhir.kzfhir.kz/CodeSystem/kz-data-subject-request",
                                 "code": "information"}]},
            "restriction": {"period": {"end": "2025-03-28T23:59:59+05:00"}}}
    assert [i.expression for i in dsr_tasks.dsr_task_issues(task)] == ["Task.statusReason"]
    task["statusReason"] = {"text": "third parties' rights"}
    assert dsr_tasks.dsr_task_issues(task) == []
    del task["restriction"]
    assert [i.expression for i in dsr_tasks.dsr_task_issues(task)] == ["Task.restriction.period.end"]


def _parameters(report: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [{p["name"]: next(v for k, v in p.items() if k.startswith("value")) for p in item["part"]}
            for item in report["parameter"] if item["name"] == name]


@pytest.mark.req("AC-16")
async def test_data_report_lists_data_held_purposes_sources_and_periods(world: World) -> None:
    patient = world.auth("patient", "Patient/p1")
    reading = {"resourceType": "Observation", "status": "final", "code": {"text": "home blood pressure"},
               "subject": {"reference": "Patient/p1"}}
    created = await world.client.post("/Observation", json=reading,
                                      headers={**patient, "content-type": "application/fhir+json"})
    assert created.status_code == 201
    assert (await world.client.get("/Observation/o1",
                                   headers=world.auth("practitioner", "Practitioner/dr1"))).status_code == 200

    r = await world.get("/Patient/p1/$data-report", patient)
    assert r.status_code == 200, r.text
    report = r.json()
    assert not world.validator.validate(report)
    values = {p["name"]: next((v for k, v in p.items() if k.startswith("value")), None)
              for p in report["parameter"]}
    assert values["dataHeld"] is True and values["retentionPeriod"] and values["processingPeriod"]
    held = {d["type"]: d["count"] for d in _parameters(report, "data")}
    assert held == {"Patient": 1, "Observation": 2, "Consent": 1, "RelatedPerson": 1}
    purposes = _parameters(report, "purpose")
    assert {"code": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"},
            "basis": "consent", "consent": {"reference": "Consent/c1"}} in purposes
    assert any(p["basis"] == "used" and p["code"]["code"] == "TREAT" for p in purposes)
    assert any(p["basis"] == "declared" for p in purposes)
    sources = _parameters(report, "source")
    assert {"kind": "system", "uri": MIS, "count": 1} in sources
    assert {"kind": "author", "who": "Patient/p1", "role": "patient", "count": 1} in sources
    methods = _parameters(report, "collectionMethod")
    assert {"method": "Entered by the patient", "basis": "observed"} in methods


@pytest.mark.req("AC-16")
async def test_data_report_is_for_the_patient_representative_and_request_admins(world: World) -> None:
    path = "/Patient/p1/$data-report"
    assert (await world.get(path, world.auth("related-person", "RelatedPerson/rp1"))).status_code == 200
    assert (await world.get(path, world.auth("admin", "Practitioner/dr2"))).status_code == 200
    # p2 and dr1 may not see Patient/p1 (dr1's consent covers Observations): unknown to them
    assert (await world.get(path, world.auth("patient", "Patient/p2"))).status_code == 404
    assert (await world.get(path, world.auth("practitioner", "Practitioner/dr1"))).status_code == 404
    # the auditor's role never runs $data-report: refused by the gate, whatever the data
    assert (await world.get(path, world.auth("auditor", "Practitioner/dr2"))).status_code == 403
    missing = await world.get("/Patient/nobody/$data-report", world.auth("admin", "Practitioner/dr2"))
    assert missing.status_code == 404
