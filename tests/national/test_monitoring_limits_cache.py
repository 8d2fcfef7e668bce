"""The per-process cache of each patient's Goal limits (jobs/monitoring.py) never judges a reading by
limits the database no longer holds: a Goal updated, moved to another patient or deleted, a unit that
wrote a Goal and rolled back, and a Goal changed on another node of one PostgreSQL database (TM-25)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.interactions.write import store_version
from fhir_server.jobs.monitoring import MonitoringAlerts
from tests.conftest import BASE
from tests.pg import fresh_database, release_database

# FHIR semantics, not access: the server runs in open mode (security: tests/security_http/).
pytestmark = [pytest.mark.open_mode, pytest.mark.req("TM-25")]

FHIR_JSON = {"content-type": "application/fhir+json"}
LOINC = "http://loinc.org"


def _reading(oid: str, value: float, patient: str = "p1") -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "8867-4"}], "text": "Heart rate"},
            "subject": {"reference": f"Patient/{patient}"}, "effectiveDateTime": "2026-01-20T08:00:00+05:00",
            "valueQuantity": {"value": value, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}}


def _goal(high: float, patient: str = "p1") -> dict[str, Any]:
    return {"resourceType": "Goal", "id": "g1", "lifecycleStatus": "active", "description": {"text": "pulse"},
            "subject": {"reference": f"Patient/{patient}"},
            "target": [{"measure": {"coding": [{"system": LOINC, "code": "8867-4"}]},
                        "detailRange": {"low": {"value": 50}, "high": {"value": high}}}]}


def _hook(app: Any) -> MonitoringAlerts:
    return next(h for h in app.state.services.change_hooks if isinstance(h, MonitoringAlerts))


async def _put(client: httpx.AsyncClient, resource: dict[str, Any]) -> None:
    r = await client.put(f"/{resource['resourceType']}/{resource['id']}", json=resource, headers=FHIR_JSON)
    assert r.status_code in (200, 201), r.text


async def _issues(client: httpx.AsyncClient, patient: str = "p1") -> int:
    return int((await client.get(f"/DetectedIssue?patient=Patient/{patient}&_summary=count")).json()["total"])


async def _seed(client: httpx.AsyncClient) -> None:
    for pid in ("p1", "p2"):
        await _put(client, {"resourceType": "Patient", "id": pid})
    await _put(client, _goal(120))
    await _put(client, _reading("first", 130))  # outside: an alert, and p1's limits are cached
    assert await _issues(client) == 1
    assert "p1" in _hook(client.app)._limits  # type: ignore[attr-defined]


async def test_an_updated_goal_is_used_at_once(client):
    await _seed(client)
    await _put(client, _goal(200))
    await _put(client, _reading("r2", 150))
    assert await _issues(client) == 1  # within the new limits


async def test_a_goal_moved_to_another_patient_no_longer_judges_the_first(client):
    await _seed(client)
    await _put(client, _goal(120, patient="p2"))
    await _put(client, _reading("r2", 150))
    assert await _issues(client) == 1  # p1 has no Goal any more
    await _put(client, _reading("r3", 150, patient="p2"))
    assert await _issues(client, "p2") == 1


async def test_a_deleted_goal_no_longer_judges(client):
    await _seed(client)
    assert (await client.delete("/Goal/g1")).status_code in (200, 204)
    await _put(client, _reading("r2", 150))
    assert await _issues(client) == 1


async def test_a_goal_written_in_a_unit_that_rolled_back_leaves_nothing_behind(client):
    await _seed(client)
    services = client.app.state.services

    def unit(view: Any) -> None:  # the Goal narrowed, a reading judged by it, then the unit fails
        store_version(view, services, _goal(100), "Goal", "g1", 2, "PUT")
        store_version(view, services, _reading("in-unit", 110), "Observation", "in-unit", 1, "PUT")
        raise RuntimeError("the unit fails after both writes")

    with pytest.raises(RuntimeError):
        await services.store.transaction(unit)
    assert await _issues(client) == 1
    await _put(client, _reading("r2", 110))  # within the stored Goal (120), outside the rolled-back one (100)
    assert await _issues(client) == 1
    await _put(client, _reading("r3", 125))
    assert await _issues(client) == 2


async def test_a_unit_that_writes_the_goal_and_a_reading_judges_it_by_the_new_goal(client):
    await _seed(client)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": _goal(100), "request": {"method": "PUT", "url": "Goal/g1"}},
        {"resource": _reading("in-unit", 110), "request": {"method": "PUT", "url": "Observation/in-unit"}},
    ]}
    r = await client.post("/", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    assert await _issues(client) == 2
    await _put(client, _reading("r2", 105))  # the committed Goal is the new one
    assert await _issues(client) == 3


async def test_cached_limits_the_database_no_longer_holds_raise_no_alert(client):
    """Limits cached from a Goal version that is not stored any more (a change or deletion this process
    did not hear of: another node's, before its notification; $expunge) are checked before they alert."""
    await _seed(client)
    hook = _hook(client.app)
    stale = hook._limits["p1"]  # from Goal/g1 version 1, high 120
    await _put(client, _goal(200))  # version 2, high 200
    hook._limits["p1"] = stale  # as if this process had not heard of version 2
    await _put(client, _reading("r2", 150))
    assert await _issues(client) == 1  # version 1 is not stored: judged by version 2, within it
    assert hook._limits["p1"] != stale
    assert (await client.delete("/Goal/g1")).status_code in (200, 204)
    hook._limits["p1"] = stale  # and as if it had not heard of the deletion
    await _put(client, _reading("r3", 150))
    assert await _issues(client) == 1
    await _put(client, _goal(120))  # a Goal again (version 4): the same limits, cached afresh, alert
    await _put(client, _reading("r4", 150))
    assert await _issues(client) == 2


# -- several nodes on one PostgreSQL database ---------------------------------------------------------------
@pytest.fixture
def database() -> Iterator[str]:
    url = fresh_database("monitoring", published=True)
    yield url
    release_database(url)


@pytest.fixture
async def nodes(database: str, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    settings = Settings(database=database, dev_key_path=tmp_path / "jwks.json", security_enabled=False)
    apps = [create_app(settings), create_app(settings)]
    async with apps[0].router.lifespan_context(apps[0]), apps[1].router.lifespan_context(apps[1]), \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=apps[0]), base_url=BASE, timeout=30) as a, \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=apps[1]), base_url=BASE, timeout=30) as b:
        a.app, b.app = apps  # type: ignore[attr-defined]
        yield a, b


async def _until(probe: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_a_goal_changed_on_another_node_is_used_on_this_one(nodes):
    a, b = nodes
    await _seed(a)
    cache = _hook(a.app)._limits  # type: ignore[attr-defined]
    await _put(b, _goal(200))  # node B widens the limits node A has cached
    await _until(lambda: "p1" not in cache)  # A heard of B's commit (the change feed)
    await _put(a, _reading("r2", 150))
    assert await _issues(a) == 1
    await _put(b, {"resourceType": "Goal", "id": "g2", "lifecycleStatus": "active", "description": {"text": "x"},
                   "subject": {"reference": "Patient/p1"},
                   "target": [{"measure": {"coding": [{"system": LOINC, "code": "8867-4"}]},
                               "detailRange": {"low": {"value": 60}}}]})  # a new Goal on B: a low limit
    await _until(lambda: "p1" not in cache)
    await _put(a, _reading("r3", 55))
    assert await _issues(a) == 2
