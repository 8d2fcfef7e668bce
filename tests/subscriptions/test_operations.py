"""``Subscription/[id]/$status`` and ``$events`` (Subscriptions Backport IG 1.1.0)."""

from __future__ import annotations

from typing import Any

from tests.subscriptions.conftest import World, appointment, consent, params, subscription


def _events(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return list(params(bundle).get("notification-event", []))


async def test_status_and_events(world: World) -> None:
    dr1 = world.auth("practitioner", "Practitioner/dr1")
    sid = await world.subscribe(dr1, subscription(world.endpoint, content="id-only"))
    p1 = world.auth("patient", "Patient/p1")
    booked = [await world.write(p1, appointment(start=f"2026-12-1{i}T09:00:00+05:00")) for i in range(3)]
    await world.notifications(3)
    r = await world.client.get(f"/Subscription/{sid}/$status", headers=dr1)
    assert r.status_code == 200, r.text
    status = r.json()
    assert status["type"] == "searchset"
    values = params({"entry": status["entry"]})
    assert values["type"] == "query-status" and values["status"] == "active"
    assert values["events-since-subscription-start"] == "3"

    r = await world.client.get(f"/Subscription/{sid}/$events", headers=dr1,
                               params={"eventsSinceNumber": "2", "content": "full-resource"})
    assert r.status_code == 200, r.text
    bundle = r.json()
    assert bundle["type"] == "history" and params(bundle)["type"] == "query-event"
    assert [e["event-number"] for e in _events(bundle)] == [["2"], ["3"]]
    assert [e["resource"]["id"] for e in bundle["entry"][1:]] == [booked[1]["id"], booked[2]["id"]]

    r = await world.client.get(f"/Subscription/{sid}/$events", headers=dr1,
                               params={"eventsSinceNumber": "1", "eventsUntilNumber": "1", "content": "empty"})
    only = r.json()
    assert [e["event-number"] for e in _events(only)] == [["1"]] and len(only["entry"]) == 1
    bad = await world.client.get(f"/Subscription/{sid}/$events", headers=dr1, params={"content": "all"})
    assert bad.status_code == 400 and bad.json()["issue"][0]["expression"] == ["content"]
    unknown = await world.client.get(f"/Subscription/{sid}/$events", headers=dr1, params={"since": "1"})
    assert unknown.status_code == 400


async def test_events_show_only_what_the_caller_may_read_now(world: World) -> None:
    dr1 = world.auth("practitioner", "Practitioner/dr1")
    sid = await world.subscribe(dr1, subscription(world.endpoint))
    p1 = world.auth("patient", "Patient/p1")
    await world.write(p1, appointment())
    await world.notifications(1)
    await world.write(p1, consent("c1", "p1", "Practitioner/dr1", status="inactive"))
    bundle = (await world.client.get(f"/Subscription/{sid}/$events", headers=dr1)).json()
    [event] = _events(bundle)
    assert event["event-number"] == ["1"] and "focus" not in event and len(bundle["entry"]) == 1
    admin = world.auth("admin", "Practitioner/admin1")  # may manage the subscription, never read patient data
    bundle = (await world.client.get(f"/Subscription/{sid}/$events", headers=admin)).json()
    assert "focus" not in _events(bundle)[0] and len(bundle["entry"]) == 1


async def test_type_level_status_lists_the_callers_own(world: World) -> None:
    dr1 = world.auth("practitioner", "Practitioner/dr1")
    dr2 = world.auth("practitioner", "Practitioner/dr2")
    first = await world.subscribe(dr1, subscription(world.endpoint))
    second = await world.subscribe(dr1, subscription(world.endpoint, content="empty"))
    theirs = await world.subscribe(dr2, subscription(world.endpoint, filters=()))

    def ids(bundle: dict[str, Any]) -> set[str]:
        return {next(p for p in e["resource"]["parameter"] if p["name"] == "subscription")["valueReference"]
                ["reference"].rsplit("/", 1)[-1] for e in bundle["entry"]}

    mine = await world.client.get("/Subscription/$status", headers=dr1)
    assert mine.status_code == 200, mine.text
    assert ids(mine.json()) == {first, second} and mine.json()["total"] == 2
    named = await world.client.get("/Subscription/$status", headers=dr1, params={"id": second})
    assert ids(named.json()) == {second}
    assert (await world.client.get("/Subscription/$status", headers=dr1, params={"id": theirs})).status_code == 404
    admin = await world.client.get("/Subscription/$status", headers=world.auth("admin", "Practitioner/adm1"))
    assert ids(admin.json()) == {first, second, theirs}
