"""A failing endpoint: retried with backoff, the Subscription in ``error``, given up after the last
attempt; a later success makes it ``active`` again. Delivery survives a restart (durable outbox), also one
in the middle of a delivery."""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson

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


class HoldingReceiver:
    """A rest-hook endpoint that, while ``holding``, takes a notification in and does not answer it."""

    def __init__(self) -> None:
        self.holding = False
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/hook"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")[1:]
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head if line)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append((headers, body))
                if self.holding:
                    await reader.read()  # until the server gives up on this connection
                    return
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client under test closed the connection: this receiver is done with it
        finally:
            writer.close()

    def events(self) -> list[tuple[str, str]]:
        """(Idempotency-Key, event number) of each event notification received."""
        out = []
        for headers, body in self.requests:
            bundle = orjson.loads(body)
            p = params(bundle)
            if p["type"] == "event-notification":
                out.append((headers["idempotency-key"], p["notification-event"][0]["event-number"][0]))
        return out


async def test_a_restart_mid_delivery_delivers_the_event_again_with_the_same_key(world: World) -> None:
    """The endpoint has the notification but the server stops before its answer is settled: after the
    restart the event is delivered again, same key and number (at least once; the key drops the repeat)."""
    from fhir_server.api.app import create_app
    from tests.conftest import BASE

    receiver = HoldingReceiver()
    endpoint = await receiver.start()
    try:
        dr1 = world.auth("practitioner", "Practitioner/dr1")
        sid = await world.subscribe(dr1, subscription(endpoint))
        receiver.holding = True
        await world.write(world.auth("patient", "Patient/p1"), appointment())
        deadline = time.monotonic() + 10
        while not receiver.events():
            assert time.monotonic() < deadline, "the notification never reached the endpoint"
            await asyncio.sleep(0.02)
        await world.subscriptions.stop()  # mid-delivery: the POST is out, its answer never came
        items = await world.store.outbox_partition("subscription", f"Subscription/{sid}", 10)
        assert [i.status for i in items if ":handshake:" not in i.key] == ["pending"]
        receiver.holding = False
        app = create_app(world.settings)  # a new process over the same database
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
            restarted = World(client, app, world.settings, world.receiver, endpoint)
            await restarted.subscriptions.start_worker(poll_seconds=0.02)
            deadline = time.monotonic() + 10
            while len(receiver.events()) < 2:
                assert time.monotonic() < deadline, "not delivered again after the restart"
                await asyncio.sleep(0.02)
            assert receiver.events() == [(f"sub:{sid}:1", "1")] * 2

            async def settled() -> list[str]:
                items = await restarted.store.outbox_partition("subscription", f"Subscription/{sid}", 10)
                return [i.status for i in items if ":handshake:" not in i.key]

            await restarted.until(settled, ["delivered"])
    finally:
        await receiver.stop()
