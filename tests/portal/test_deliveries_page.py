"""The console's page of rejected deliveries (TM-11, TM-13, TM-12): an administrator signed in to the portal sees
the NEHP's refusal of a record with its reason and the patient, through ``GET $deliveries`` with the
administrator's own token; a practitioner may not open the page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest

from fhir_server.api.app import create_app
from fhir_server.identity.issuer import IdentityConfig
from fhir_server.identity.registry import Registry
from fhir_server.jobs.runtime import NEHP_TOPIC, build_worker
from tests.orders.doubles import AckingReceiver
from tests.portal.conftest import LOCAL, portal_settings, register_people, sign_in, store


@pytest.fixture
async def nehp() -> AsyncIterator[AckingReceiver]:
    receiver = AckingReceiver(reject="record lacks the service code (MD-D item 7)")
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest.mark.req("TM-11")
@pytest.mark.req("TM-13")
async def test_the_console_lists_the_deliveries_the_nehp_rejected(tmp_path: Path, pki: Path,
                                                                  nehp: AckingReceiver) -> None:
    assert nehp.server is not None
    url = f"http://127.0.0.1:{nehp.server.sockets[0].getsockname()[1]}/v1/records"
    settings = portal_settings(tmp_path, pki, nehp_url=url)
    register_people(Registry(IdentityConfig.from_settings(settings).database))
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=LOCAL, timeout=60) as web:
        await store(app, [{"resourceType": "Patient", "id": "p1", "name": [{"family": "Ахметова"}]}])
        if app.state.outbox_worker is not None:
            await app.state.outbox_worker.stop()  # the test drives the delivery itself
        services = app.state.services
        await services.store.transaction(lambda view: view.enqueue(
            NEHP_TOPIC, "Patient/p1", "rec-e7-1", orjson.dumps({"record": {"id": "e7"}})))
        worker = build_worker(settings, services.store, services=services, base_backoff=0.0)
        assert worker is not None
        await worker.run_once()
        assert len(nehp.bodies) == 1

        await sign_in(web, "dr.serik")
        assert (await web.get("/portal/console/deliveries")).status_code == 403  # administrators only
        web.cookies.clear()
        await sign_in(web, "admin1")
        console = await web.get("/portal/console")
        assert "/portal/console/deliveries" in console.text
        page = await web.get("/portal/console/deliveries")
        assert page.status_code == 200, page.text
        assert "record lacks the service code (MD-D item 7)" in page.text
        assert "Patient/p1" in page.text and "rec-e7-1" in page.text
