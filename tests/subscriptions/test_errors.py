"""A failing endpoint: retried with backoff, the Subscription in ``error``, given up after the last
attempt; a later success makes it ``active`` again. Delivery survives a restart (durable outbox)."""

from __future__ import annotations

from tests.subscriptions.conftest import World, appointment, params, subscription


async def test_retries_then_error_then_recovery(world: World) -> None:
    dr1 = world.auth("practitioner", "Practitioner/dr1")
    sid = await world.subscribe(dr1, subscription(world.endpoint))
    world.receiver.statuses = [500, 503]
    await world.write(world.auth("patient", "Patient/p1"), appointment())
    [note] = await world.notifications(1)  # the third attempt is accepted
    assert [r.status for r in world.receiver.requests[-3:]] == [500, 503, 200]
    assert params(note)["notification-event"][0]["event-number"] == ["1"]
    await world.until(lambda: world.status_of(sid, dr1), "active")
    history = (await world.client.get(f"/Subscription/{sid}/_history", headers=dr1)).json()
    statuses = [e["resource"]["status"] for e in reversed(history["entry"])]
    assert statuses[:3] == ["requested", "active", "error"] and statuses[-1] == "active"


async def test_given_up_after_the_last_attempt(world: World) -> None:
    dr1 = world.auth("practitioner", "Practitioner/dr1")
    sid = await world.subscribe(dr1, subscription(world.endpoint))
    world.receiver.statuses = [500] * 10
    await world.write(world.auth("patient", "Patient/p1"), appointment())

    async def dead() -> bool:
        items = await world.store.outbox_partition("subscription", f"Subscription/{sid}", 10)
        return any(i.status == "dead" for i in items)

    await world.until(dead, True)
    stored = (await world.client.get(f"/Subscription/{sid}", headers=dr1)).json()
    assert stored["status"] == "error" and "500" in stored["error"]
    status = (await world.client.get(f"/Subscription/{sid}/$status", headers=dr1)).json()["entry"][0]["resource"]
    names = {p["name"]: p for p in status["parameter"]}
    assert names["status"]["valueCode"] == "error" and "500" in names["error"]["valueCodeableConcept"]["text"]


async def test_a_failed_handshake_leaves_it_in_error(world: World) -> None:
    world.receiver.statuses = [404] * 10
    dr1 = world.auth("practitioner", "Practitioner/dr1")
    sid = await world.subscribe(dr1, subscription(world.endpoint), active=False)
    await world.until(lambda: world.status_of(sid, dr1), "error")
    await world.write(world.auth("patient", "Patient/p1"), appointment())
    assert world.of_kind("event-notification") == []


async def test_queued_events_survive_a_restart(world: World) -> None:
    import httpx

    from fhir_server.api.app import create_app
    from tests.conftest import BASE

    dr1 = world.auth("practitioner", "Practitioner/dr1")
    sid = await world.subscribe(dr1, subscription(world.endpoint))
    worker = world.subscriptions.worker
    assert worker is not None
    await worker.stop()  # the server stops before delivering
    await world.write(world.auth("patient", "Patient/p1"), appointment())
    assert world.of_kind("event-notification") == []
    await world.subscriptions.stop()
    app = create_app(world.settings)  # a new process over the same database
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        restarted = World(client, app, world.settings, world.receiver, world.endpoint)
        await restarted.subscriptions.start_worker(poll_seconds=0.02)
        [note] = await restarted.notifications(1)
        assert params(note)["subscription"]["reference"].endswith(sid)
        assert restarted.subscriptions.registry.get(sid).events == 1  # type: ignore[union-attr]
