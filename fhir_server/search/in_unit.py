"""Reading resources by search inside a write unit (through its TxView), for code that must see the
unit's own writes and decide before it commits: transaction authorisation, monitoring alerts."""

from __future__ import annotations

from typing import Any

import orjson

from fhir_server.search.parse import parse_search
from fhir_server.storage.protocols import TxView


def find_in_unit(view: TxView, resource_type: str, params: list[tuple[str, str]], limit: int = 1000
                 ) -> list[dict[str, Any]]:
    """The current resources matching ``params`` (strictly parsed), as JSON, at most ``limit``."""
    out = []
    for rtype, rid in view.search_ids(parse_search(resource_type, params, strict=True), limit):
        stored = view.current(rtype, rid)
        if stored is not None and stored.data is not None:
            out.append(orjson.loads(stored.data))
    return out
