"""AuditEvents through the REST API: read-only views of the tamper-evident audit chain (AC-14).

AuditEvents are not ordinary resources here: they live in the hash-chained audit trail, written by the
server only. ``GET AuditEvent/[id]`` reads one, ``GET AuditEvent?patient=&_count=`` lists them newest
first; create, update, patch and delete are refused by the policy for every role. The policy's gate
decides who may see them (oversight roles); patients see theirs through ``Patient/$access-log``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fhir_server.errors import FhirError
from fhir_server.interactions.base import FhirResponse
from fhir_server.interactions.request import FhirRequest
from fhir_server.jsonio import dumps
from fhir_server.search.cursor import seal, unseal
from fhir_server.security.audit.balp import AuditTarget
from fhir_server.security.policy import Action

_KNOWN = frozenset({"patient", "_count", "_cursor", "_format", "_pretty"})


async def read(req: FhirRequest, event_id: str) -> FhirResponse | None:
    """The AuditEvent from the chain, or None when the chain has no such event (an AuditEvent stored as
    an ordinary resource, which only open development mode allows, is then read the usual way)."""
    target = AuditTarget("read", "AuditEvent", event_id)
    verdict = await req.access.gate(Action.READ, "AuditEvent", target, instance=True)
    row = await req.access.records.audit.event(event_id)
    if row is None:
        return None
    req.access.record(target, verdict, set())
    return FhirResponse(200, row[1], {"ETag": 'W/"1"'})


async def search(req: FhirRequest, params: list[tuple[str, str]]) -> FhirResponse:
    query = urlencode(params)
    target = AuditTarget("search-type", "AuditEvent", query=query)
    verdict = await req.access.gate(Action.SEARCH, "AuditEvent", target)
    unknown = sorted({k for k, _ in params} - _KNOWN)
    if unknown:
        raise FhirError("invalid", f"AuditEvent search supports patient, _count and _cursor; not {unknown}",
                        code="not-supported", expression=unknown[0])
    values = dict(params)
    patient = values.get("patient")
    if patient is not None and not patient.startswith("Patient/"):
        patient = f"Patient/{patient}"
    count = int(values["_count"]) if values.get("_count", "").isascii() and values.get("_count", "").isdigit() else 50
    cursor = None
    if values.get("_cursor"):
        try:
            cursor = int(unseal(values["_cursor"]).decode("ascii"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise FhirError("invalid", "_cursor is not a cursor this server issued (or it expired)", code="value",
                            expression="_cursor") from exc
    rows = await req.access.records.audit.events(patient, min(count, 1000) + 1, cursor)
    more = len(rows) > count
    rows = rows[:count]
    base_url = req.base_url
    links: list[dict[str, Any]] = [{"relation": "self", "url": f"{base_url}/AuditEvent?{query}"}]
    if more and rows:
        nxt = [(k, v) for k, v in params if k != "_cursor"] + [("_cursor", seal(str(rows[-1][0]).encode()))]
        links.append({"relation": "next", "url": f"{base_url}/AuditEvent?{urlencode(nxt)}"})
    bundle = {"resourceType": "Bundle", "type": "searchset", "link": links,
              "entry": [{"fullUrl": f"{base_url}/AuditEvent/{e['id']}", "resource": e, "search": {"mode": "match"}}
                        for _, e in rows]}
    req.access.record(target, verdict, set())
    return FhirResponse(200, dumps(bundle))
