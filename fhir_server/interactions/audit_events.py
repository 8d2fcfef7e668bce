"""AuditEvents through the REST API: read-only views of the tamper-evident audit chain (AC-14).

AuditEvents are not ordinary resources here: they live in the hash-chained ``audit_chain`` table,
written by the server only. ``GET AuditEvent/[id]`` reads one, ``GET AuditEvent?patient=&_count=``
lists them newest first; create, update, patch and delete are refused by the policy for every role.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fhir_server.errors import FhirError
from fhir_server.interactions.access import Action, AuditTarget, session
from fhir_server.interactions.base import FhirResponse, Services
from fhir_server.jsonio import dumps
from fhir_server.search.cursor import seal, unseal
from fhir_server.security.context import RequestContext


async def read(services: Services, ctx: RequestContext, event_id: str) -> FhirResponse | None:
    """The AuditEvent from the chain, or None when the chain has no such event (an AuditEvent stored as
    an ordinary resource, which only open development mode allows, is then read the usual way)."""
    access = session(services, ctx)
    target = AuditTarget("read", "AuditEvent", event_id)
    verdict = await access.start(Action.READ, "AuditEvent", target, instance_level=True)
    row = await services.store.audit_event(event_id)
    if row is None:
        return None
    access.record(target, verdict, set())
    await access.flush()
    return FhirResponse(200, row[1], {"ETag": 'W/"1"'})


async def search(services: Services, ctx: RequestContext, params: list[tuple[str, str]], base_url: str
                 ) -> FhirResponse:
    access = session(services, ctx)
    query = urlencode(params)
    target = AuditTarget("search-type", "AuditEvent", query=query)
    verdict = await access.start(Action.SEARCH, "AuditEvent", target)
    known = {"patient", "_count", "_cursor", "_format", "_pretty"}
    unknown = sorted({k for k, _ in params} - known)
    if unknown:
        raise FhirError("invalid", f"AuditEvent search supports patient, _count and _cursor; not {unknown}",
                        code="not-supported")
    values = dict(params)
    patient = values.get("patient")
    if patient is not None and not patient.startswith("Patient/"):
        patient = f"Patient/{patient}"
    count = int(values["_count"]) if values.get("_count", "").isdigit() else 50
    cursor = None
    if values.get("_cursor"):
        try:
            cursor = int(unseal(values["_cursor"]).decode("ascii"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise FhirError("invalid", "_cursor is not a cursor this server issued (or it expired)", code="value",
                            expression="_cursor") from exc
    rows = await services.store.audit_events(patient, min(count, 1000) + 1, cursor)
    more = len(rows) > count
    rows = rows[:count]
    links: list[dict[str, Any]] = [{"relation": "self", "url": f"{base_url}/AuditEvent?{query}"}]
    if more and rows:
        nxt = [(k, v) for k, v in params if k != "_cursor"] + [("_cursor", seal(str(rows[-1][0]).encode()))]
        links.append({"relation": "next", "url": f"{base_url}/AuditEvent?{urlencode(nxt)}"})
    bundle = {"resourceType": "Bundle", "type": "searchset", "link": links,
              "entry": [{"fullUrl": f"{base_url}/AuditEvent/{e['id']}", "resource": e, "search": {"mode": "match"}}
                        for _, e in rows]}
    access.record(target, verdict, set())
    await access.flush()
    return FhirResponse(200, dumps(bundle))
