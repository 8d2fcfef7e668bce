"""Telemedicine workflows through the server in national strict mode: schedules and slots (TM-05),
booking with the MD-B data set (TM-06), consilium requests (TM-08), wearable readings (TM-23)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from profiles import examples_dir
from tests.conftest import BASE

FHIR_JSON = {"content-type": "application/fhir+json"}


def _example(name: str) -> dict[str, Any]:
    return json.loads((examples_dir() / name).read_text())


@pytest.fixture
async def national(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database=tmp_path / "tm.sqlite", require_kz_profiles=True, security_enabled=False,
                              synchronous_full=False))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE
    ) as c:
        for name in ("Patient-kz-patient-1.json", "Practitioner-kz-practitioner-1.json",
                     "Practitioner-kz-practitioner-2.json", "Organization-kz-organization-1.json"):
            res = _example(f"valid/{name}")
            r = await c.put(f"/{res['resourceType']}/{res['id']}", json=res, headers=FHIR_JSON)
            assert r.status_code in (200, 201), r.text
        yield c


async def _put(c: httpx.AsyncClient, res: dict[str, Any]) -> httpx.Response:
    return await c.put(f"/{res['resourceType']}/{res['id']}", json=res, headers=FHIR_JSON)


@pytest.mark.req("TM-05")
@pytest.mark.req("TM-06")
@pytest.mark.req("MD-B")
async def test_schedule_free_slot_and_booking(national):
    schedule = {"resourceType": "Schedule", "id": "sch1", "active": True,
                "actor": [{"reference": "Practitioner/kz-practitioner-1"}],
                "planningHorizon": {"start": "2026-01-20T09:00:00+05:00", "end": "2026-01-20T18:00:00+05:00"}}
    assert (await _put(national, schedule)).status_code == 201
    for n, status in enumerate(("free", "busy", "free")):
        slot = {"resourceType": "Slot", "id": f"slot{n}", "schedule": {"reference": "Schedule/sch1"},
                "status": status, "start": f"2026-01-20T1{n}:00:00+05:00", "end": f"2026-01-20T1{n}:20:00+05:00"}
        assert (await _put(national, slot)).status_code == 201
    free = (await national.get("/Slot?schedule.actor=Practitioner/kz-practitioner-1&status=free&_sort=start")).json()
    assert [e["resource"]["id"] for e in free["entry"]] == ["slot0", "slot2"]
    booking = _example("valid/Appointment-kz-appointment-1.json")
    booking["slot"] = [{"reference": "Slot/slot0"}]
    r = await _put(national, booking)
    assert r.status_code == 201, r.text
    found = (await national.get("/Appointment?patient=Patient/kz-patient-1&date=2026-01-20")).json()
    assert [e["resource"]["id"] for e in found["entry"]] == ["kz-appointment-1"]
    # a booking without the MD-B data set is refused in national mode, each for its missing item
    for name in ("Appointment-patient-no-iin.json", "Appointment-no-service.json", "Appointment-no-start.json",
                 "Appointment-no-doctor-or-area.json"):
        r = await national.post("/Appointment", json=_example(f"invalid/{name}"), headers=FHIR_JSON)
        assert r.status_code == 422, name


@pytest.mark.req("TM-08")
async def test_consilium_request_is_stored_and_found_by_category(national):
    consilium = _example("valid/ServiceRequest-kz-servicerequest-2.json")
    assert (await _put(national, consilium)).status_code == 201
    url = "/ServiceRequest?category=https://fhir.kzfhir.kz/CodeSystem/kz-remote-service-form|consilium"
    assert [e["resource"]["id"] for e in (await national.get(url)).json()["entry"]] == [consilium["id"]]
    one_performer = _example("invalid/ServiceRequest-consilium-one-performer.json")
    assert (await national.post("/ServiceRequest", json=one_performer, headers=FHIR_JSON)).status_code == 422


@pytest.mark.req("TM-23")
@pytest.mark.req("TM-24")
async def test_wearable_readings_need_their_device_and_manual_entries_their_performer(national):
    device = {"resourceType": "Device", "id": "watch1", "status": "active",
              "deviceName": [{"name": "Пульсометр", "type": "user-friendly-name"}],
              "patient": {"reference": "Patient/kz-patient-1"}}
    assert (await _put(national, device)).status_code == 201
    reading = _example("valid/Observation-kz-observation-1.json")
    reading["device"] = {"reference": "Device/watch1"}
    assert (await _put(national, reading)).status_code == 201
    assert (await national.post("/Observation", json=_example("invalid/Observation-device-missing.json"),
                                headers=FHIR_JSON)).status_code == 422
    assert (await national.post("/Observation", json=_example("invalid/Observation-manual-no-performer.json"),
                                headers=FHIR_JSON)).status_code == 422
    by_device = (await national.get("/Observation?device=Device/watch1")).json()
    assert [e["resource"]["id"] for e in by_device["entry"]] == ["kz-observation-1"]
