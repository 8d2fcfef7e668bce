"""transaction: ``POST [base]`` with a ``transaction`` Bundle (FHIR R4 http.html §3.1.0.11).

All or nothing: every write is one WriteOp of one plan, run by the executor in one store unit
(executor.py: order DELETE, POST, PUT, PATCH; ``urn:uuid:`` and entry fullUrls and conditional
references resolved inside the unit; every write judged after all are applied). GET/HEAD entries run
after the commit, on what it wrote, as the same interactions a direct request would.
"""

from __future__ import annotations

from typing import Any

from fhir_server.errors import FhirError
from fhir_server.interactions import entry_response
from fhir_server.interactions.batch import write_op
from fhir_server.interactions.bundle_entries import Entry, parse_entry
from fhir_server.interactions.executor import execute
from fhir_server.interactions.plan import WriteOp
from fhir_server.interactions.request import FhirRequest


def _check_entry(entry: Entry) -> None:
    if entry.operation is not None and entry.method not in ("GET", "HEAD"):
        raise FhirError("invalid", f"entry {entry.index}: {entry.method} {entry.url[:200]} is not supported in a "
                        "transaction", code="not-supported", expression=f"{entry.where}.request.url")


async def handle(req: FhirRequest, bundle: dict[str, Any]) -> list[dict[str, Any]]:
    entries = [parse_entry(req.services, i, raw, req.base_url) for i, raw in enumerate(bundle.get("entry", []))]
    ops: dict[int, WriteOp] = {}
    for entry in entries:
        _check_entry(entry)
        if entry.method not in ("GET", "HEAD"):
            ops[entry.index] = await write_op(req, entry)
    if ops:
        await execute(req, list(ops.values()), transaction=True)
    out: list[dict[str, Any]] = []
    for entry in entries:
        if entry.index in ops:
            out.append(entry_response.for_write(ops[entry.index], req.prefer, req.base_url))
        else:
            out.append(await entry_response.run_get(req, entry))
    return out
