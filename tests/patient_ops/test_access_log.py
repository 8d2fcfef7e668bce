"""``Patient/{id}/$access-log`` over real HTTP with security on (AC-24, TM-18)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.patient_ops.conftest import BIN, World

LOG = "/Patient/p1/$access-log"


def _events(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry", [])]


def _who(event: dict[str, Any]) -> str | None:
    for agent in event["agent"]:
        if agent.get("requestor"):
            return str(agent["who"].get("reference"))
    return None


def _purposes(event: dict[str, Any]) -> list[str]:
    return [c["code"] for p in event.get("purposeOfEvent", []) for c in p["coding"]]


def _details(event: dict[str, Any]) -> dict[str, str]:
    return {d["type"]: d["valueString"] for e in event.get("entity", []) for d in e.get("detail", [])}


def _what(event: dict[str, Any]) -> list[str]:
    return [e["what"]["reference"] for e in event.get("entity", []) if "reference" in e.get("what", {})]


@pytest.mark.req("AC-24")
@pytest.mark.req("TM-18")
async def test_patient_sees_who_read_their_observation_when_and_why(world: World) -> None:
    doctor = world.auth("practitioner", "Practitioner/dr1", bin=BIN)
    served = await world.client.get("/Observation/o1", headers={**doctor, "X-Purpose-Of-Use": "TREAT"})
    assert served.status_code == 200

    r = await world.get(LOG, world.auth("patient", "Patient/p1"))

    assert r.status_code == 200, r.text
    bundle = r.json()
    assert bundle["type"] == "searchset"
    read = next(e for e in _events(bundle) if _who(e) == "Practitioner/dr1")
    assert read["subtype"][0]["code"] == "read"
    assert "Observation/o1/_history/1" in _what(read)
    assert _purposes(read) == ["TREAT"]
    assert read["recorded"].startswith("20")
    organisation = [a["who"] for a in read["agent"] if a["type"]["coding"][0]["code"] == "PROV"]
    assert organisation == [{"identifier": {"system": "https://fhir.kzfhir.kz/sid/bin", "value": BIN}}]
    # what the patient must not see: network addresses, token ids, machine agents
    assert all("network" not in a and "policy" not in a for a in read["agent"])
    assert not world.validator.validate(read), "the patient view must stay a valid R4 AuditEvent"


@pytest.mark.req("AC-24")
async def test_default_purpose_is_shown_as_assumed_when_the_request_named_none(world: World) -> None:
    assert (await world.client.get("/Observation/o1",
                                   headers=world.auth("practitioner", "Practitioner/dr1"))).status_code == 200
    bundle = (await world.get(LOG, world.auth("patient", "Patient/p1"))).json()
    read = next(e for e in _events(bundle) if _who(e) == "Practitioner/dr1")
    assert _purposes(read) == ["TREAT"]
    assert read["purposeOfEvent"][0]["text"].startswith("assumed")


@pytest.mark.req("AC-24")
@pytest.mark.req("TM-18")
async def test_patient_sees_break_glass_access_with_its_reason(world: World) -> None:
    reason = "unconscious, brought by ambulance"
    emergency = world.auth("practitioner", "Practitioner/dr2", break_glass=reason)
    assert (await world.client.get("/Observation/o1", headers=emergency)).status_code == 200

    bundle = (await world.get(LOG, world.auth("patient", "Patient/p1"))).json()
    event = next(e for e in _events(bundle) if _who(e) == "Practitioner/dr2")
    assert {"ETREAT", "BTG"} <= set(_purposes(event))
    assert _details(event)["break-glass-reason"] == reason

    compact = (await world.get(LOG, world.auth("patient", "Patient/p1"), _view="compact")).json()
    assert compact["resourceType"] == "Parameters"
    lines = [{p["name"]: next(v for k, v in p.items() if k.startswith("value")) for p in e["part"]}
             for e in compact["parameter"] if e["name"] == "entry"]
    line = next(item for item in lines if item.get("who") == "Practitioner/dr2")
    assert line["emergency"] is True
    assert line["breakGlassReason"] == reason


@pytest.mark.req("AC-24")
async def test_another_patient_gets_404_and_the_attempt_is_in_the_owners_log(world: World) -> None:
    # hidden means absent: p2 may not see Patient/p1, so the log answers as for an unknown patient
    r = await world.get(LOG, world.auth("patient", "Patient/p2"))
    assert r.status_code == 404
    assert r.json()["issue"][0]["diagnostics"] == "Patient/p1 is not known"
    unknown = await world.get("/Patient/nobody/$access-log", world.auth("patient", "Patient/p2"))
    assert unknown.status_code == 404 and unknown.json()["issue"][0]["diagnostics"] == "Patient/nobody is not known"

    bundle = (await world.get(LOG, world.auth("patient", "Patient/p1"))).json()
    refused = [e for e in _events(bundle) if _who(e) == "Patient/p2"]
    assert refused and refused[0]["outcome"] == "4"


@pytest.mark.req("AC-24")
async def test_consent_to_read_records_does_not_open_the_access_log(world: World) -> None:
    doctor = world.auth("practitioner", "Practitioner/dr1")
    assert (await world.client.get("/Observation/o1", headers=doctor)).status_code == 200
    # dr1's consent covers Observations, not the Patient resource: the patient is unknown to him
    assert (await world.get(LOG, doctor)).status_code == 404
    # break-glass lets dr2 see the patient; the access log is still only the patient's
    emergency = world.auth("practitioner", "Practitioner/dr2", break_glass="curiosity")
    r = await world.get(LOG, emergency)
    assert r.status_code == 403 and r.json()["issue"][0]["code"] == "forbidden"


@pytest.mark.req("AC-24")
async def test_verified_representative_reads_the_access_log(world: World) -> None:
    r = await world.get(LOG, world.auth("related-person", "RelatedPerson/rp1"))
    assert r.status_code == 200, r.text


@pytest.mark.req("AC-24")
@pytest.mark.req("AC-14")
async def test_auditor_and_admin_read_any_patients_access_log(world: World) -> None:
    await world.client.get("/Observation/o2", headers=world.auth("patient", "Patient/p2"))
    for role in ("auditor", "admin"):
        r = await world.get("/Patient/p2/$access-log", world.auth(role, "Practitioner/dr2"))
        assert r.status_code == 200, r.text
        assert any(_who(e) == "Patient/p2" for e in _events(r.json()))
    # the oversight reads are themselves in the patient's log
    bundle = (await world.get("/Patient/p2/$access-log", world.auth("patient", "Patient/p2"))).json()
    assert {e["agent"][0]["role"][0]["coding"][0]["code"] for e in _events(bundle)} >= {"auditor", "admin"}


@pytest.mark.req("TM-18")
async def test_access_log_pages_newest_first_without_gaps_or_repeats(world: World) -> None:
    doctor = world.auth("practitioner", "Practitioner/dr1")
    for _ in range(5):
        assert (await world.client.get("/Observation/o1", headers=doctor)).status_code == 200
    patient = world.auth("patient", "Patient/p1")
    everything = _events((await world.get(LOG, patient, _count=100)).json())

    seen: list[dict[str, Any]] = []
    page = (await world.get(LOG, patient, _count=2)).json()
    while True:
        seen += _events(page)
        following = [link["url"] for link in page["link"] if link["relation"] == "next"]
        if not following:
            break
        page = (await world.client.get(following[0], headers=patient)).json()

    # each page read is logged after it is served, so compare the events that existed at the start
    ids = [e["id"] for e in seen]
    assert len(ids) == len(set(ids))
    assert [e["id"] for e in everything] == [i for i in ids if i in {e["id"] for e in everything}]
    assert [e["recorded"] for e in everything] == sorted((e["recorded"] for e in everything), reverse=True)


@pytest.mark.req("AC-24")
async def test_access_log_filters_by_date(world: World) -> None:
    assert (await world.client.get("/Observation/o1",
                                   headers=world.auth("practitioner", "Practitioner/dr1"))).status_code == 200
    patient = world.auth("patient", "Patient/p1")
    assert _events((await world.get(LOG, patient, _since="2000-01-01")).json())
    assert not _events((await world.get(LOG, patient, _since="2999-01-01")).json())
    assert not _events((await world.get(LOG, patient, _until="2000-12-31")).json())
    assert not _events((await world.get(LOG, patient, date="lt2000")).json())
    assert _events((await world.get(LOG, patient, date="ge2000-01-01T00:00:00Z")).json())
    assert (await world.get(LOG, patient, date="ne2000")).status_code == 400
    assert (await world.get(LOG, patient, _since="yesterday")).status_code == 400
    assert (await world.get(LOG, patient, _count="0")).status_code == 400
    assert (await world.get(LOG, patient, colour="blue")).status_code == 400
