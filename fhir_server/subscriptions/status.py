"""The server's own changes of ``Subscription.status``: ``requested`` → ``active`` after a successful
handshake, ``active`` → ``error`` when a delivery fails (with ``Subscription.error``), back to
``active`` when one succeeds. A Subscription switched ``off`` by its owner stays off. Each change is
a new version of the Subscription, written in a unit of its own (the owner extension is kept)."""

from __future__ import annotations

from typing import Any

import orjson

from fhir_server.interactions.write import store_version
from fhir_server.storage.protocols import TxView
from fhir_server.subscriptions.registry import Registry


async def set_status(services: Any, registry: Registry, subscription_id: str, status: str,
                     error: str | None = None) -> bool:
    """Write the new status if it differs; True when a version was written."""

    def unit(view: TxView) -> bool:
        current = view.current("Subscription", subscription_id)
        if current is None or current.deleted or current.data is None:
            return False
        resource = orjson.loads(current.data)
        if resource.get("status") in (status, "off") and (status != "error" or resource.get("error") == error):
            return False
        changed = {k: v for k, v in resource.items() if k != "error"}
        changed["status"] = status
        if error:
            changed["error"] = error[:500]
        written = store_version(view, services, changed, "Subscription", subscription_id, current.version + 1, "PUT")
        view.on_commit(lambda: registry.set_status(subscription_id, status, written.version))
        return True

    written: bool = await services.store.transaction(unit)
    return written
