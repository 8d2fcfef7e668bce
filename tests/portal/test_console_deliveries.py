"""The console's deliveries page beyond the refused ones (TM-11, TM-19, TM-13): how many messages to the NEHP,
the payment system and the e-government cabinet are given up, pending and delivered, and the messages of each
state, paged, all through ``GET $deliveries`` with the administrator's own token (``counts=true`` for the
overview). The API answers the same counts to any administrator client; a bad ``counts`` is 400."""

from __future__ import annotations

import re

import httpx
import orjson
import pytest

from fhir_server.jobs.runtime import EGOV_TOPIC, NEHP_TOPIC, PAYMENT_TOPIC
from fhir_server.security.auth import issue_dev_token
from fhir_server.storage.protocols import TxView
from tests.portal.conftest import sign_in


def rows(page: httpx.Response) -> list[str]:
    return re.findall(r'<tr id="delivery-(\d+)"', page.text)


async def queue_messages(web: httpx.AsyncClient) -> None:
    """The set-up: 60 NEHP records still to deliver, one payment message delivered, one cabinet message given up
    (as the outbox worker leaves them; the worker itself is stopped so that nothing moves meanwhile)."""
    app = web.app  # type: ignore[attr-defined]
    if app.state.outbox_worker is not None:
        await app.state.outbox_worker.stop()
    store = app.state.services.store

    def enqueue(view: TxView) -> None:
        for i in range(60):
            view.enqueue(NEHP_TOPIC, "Patient/p1", f"rec-{i:02d}", orjson.dumps({"record": i}))
        view.enqueue(PAYMENT_TOPIC, "Patient/p1", "pay-1", b"{}")
        view.enqueue(EGOV_TOPIC, "Patient/p2", "cab-1", b"{}")

    await store.transaction(enqueue)
    paid = await store.outbox_by_status(PAYMENT_TOPIC, "pending", 10)
    refused = await store.outbox_by_status(EGOV_TOPIC, "pending", 10)
    await store.transaction(lambda view: view.settle_outbox([paid[0].id], "delivered", None, None))
    await store.transaction(lambda view: view.settle_outbox([refused[0].id], "dead", "cabinet: unknown IIN", None))


@pytest.mark.req("TM-11")
@pytest.mark.req("TM-19")
async def test_the_console_counts_and_pages_every_delivery_state(web: httpx.AsyncClient, settings) -> None:
    await queue_messages(web)
    admin = {"Authorization": f"Bearer {issue_dev_token('admin', 'Practitioner/adm1', key_path=settings.dev_key_path)}"}
    api = await web.get("/$deliveries", params={"counts": "true", "status": "pending"}, headers=admin)
    assert api.status_code == 200, api.text
    counted = {(c["part"][0]["valueCode"], c["part"][1]["valueCode"]): c["part"][2]["valueInteger"]
               for c in api.json()["parameter"] if c["name"] == "count"}
    assert counted == {("nehp", "pending"): 60, ("payment", "delivered"): 1, ("egov-cabinet", "dead"): 1}
    assert (await web.get("/$deliveries", params={"counts": "maybe"}, headers=admin)).status_code == 400

    await sign_in(web, "admin1")
    overview = await web.get("/portal/console/deliveries")
    assert overview.status_code == 200, overview.text
    cell = re.compile(r'<td id="count-([a-z-]+)-([a-z]+)"><a [^>]*>(\d+)</a></td>')
    cells = {(topic, st): int(n) for topic, st, n in cell.findall(overview.text)}
    assert cells[("nehp", "pending")] == 60 and cells[("payment", "delivered")] == 1
    assert cells[("egov-cabinet", "dead")] == 1 and cells[("nehp", "dead")] == 0 and len(cells) == 9
    assert "cabinet: unknown IIN" in overview.text and len(rows(overview)) == 1  # the given-up ones first

    pending = await web.get("/portal/console/deliveries", params={"topic": "nehp", "status": "pending"})
    assert len(rows(pending)) == 50 and "rec-59" in pending.text and "rec-09" not in pending.text
    older = re.search(r'href="(/portal/console/deliveries\?topic=nehp&amp;status=pending&amp;cursor=\d+)" rel="next"',
                      pending.text)
    assert older is not None
    rest = await web.get(older.group(1).replace("&amp;", "&"))
    assert len(rows(rest)) == 10 and "rec-00" in rest.text and 'rel="next"' not in rest.text
    assert set(rows(rest)).isdisjoint(rows(pending))

    delivered = await web.get("/portal/console/deliveries", params={"status": "delivered"})
    assert "pay-1" in delivered.text and "rec-" not in delivered.text and len(rows(delivered)) == 1
    web.cookies.set("kzfhir_lang", "kk")
    assert "Жіберуді күтуде" in (await web.get("/portal/console/deliveries")).text
