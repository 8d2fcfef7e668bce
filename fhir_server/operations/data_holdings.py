"""What the server holds about one patient and where it came from (inputs of ``$data-report``, AC-16).

Two scans, both read-only:

* ``holdings``: the patient's compartment (R4 CompartmentDefinition ``patient``, through the search
  layer) plus their Tasks (requests; Task is not in the R4 definition): counts per resource type,
  first and last update, the ``meta.source`` systems, and the purposes their Consents name.
* ``trail``: the patient's audit trail (newest first, at most ``limit`` events): who added or
  changed their data (author, role, organisation) and for which purposes their data was used.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from fhir_server.jobs.delivery_audit import is_delivery
from fhir_server.operations.access_log_view import assumed_purpose
from fhir_server.search import parse_search
from fhir_server.security.audit import access_log_entry
from fhir_server.security.audit.balp import AuditTarget
from fhir_server.security.policy import Verdict
from fhir_server.security.session import AccessSession
from fhir_server.storage.protocols import Store

PAGE = "1000"
WRITES = frozenset({"create", "update", "patch"})


@dataclass(slots=True)
class TypeHeld:
    count: int = 0
    first: str | None = None  # earliest meta.lastUpdated of a current version
    last: str | None = None

    def add(self, updated: str | None) -> None:
        self.count += 1
        if updated:
            self.first = updated if self.first is None else min(self.first, updated)
            self.last = updated if self.last is None else max(self.last, updated)


@dataclass(slots=True)
class Holdings:
    types: dict[str, TypeHeld] = field(default_factory=dict)
    sources: Counter[str] = field(default_factory=Counter)  # meta.source -> resources
    # (system, code) of a permitted purpose -> the active Consents that name it
    consent_purposes: dict[tuple[str, str], set[str]] = field(default_factory=dict)


@dataclass(slots=True)
class Trail:
    examined: int = 0
    complete: bool = True  # False when the limit stopped the scan before the oldest event
    authors: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (who, role, organisation)
    purposes: Counter[str] = field(default_factory=Counter)


async def _matches(access: AccessSession, start: Verdict, resource_type: str | None, params: list[tuple[str, str]],
                   compartment: tuple[str, str] | None) -> list[dict[str, Any]]:
    """Every resource of a search the caller may see (all of them for the oversight role the gate
    authorised by name), page by page through the session."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    target = AuditTarget("operation", resource_type, query="$data-report")
    while True:
        page = params + [("_count", PAGE)] + ([("_cursor", cursor)] if cursor else [])
        result = await access.search(parse_search(resource_type, page, strict=True, compartment=compartment),
                                     target, start)
        found += [orjson.loads(m.data) for m in result.matches if m.mode == "match"]
        cursor = result.next_cursor
        if not cursor:
            return found


def _provision_purposes(provision: dict[str, Any]) -> list[tuple[str, str]]:
    own = [(str(p.get("system", "")), str(p.get("code"))) for p in provision.get("purpose", []) or []
           if isinstance(p, dict) and p.get("code") and provision.get("type", "permit") == "permit"]
    for child in provision.get("provision", []) or []:
        own += _provision_purposes(child)
    return own


async def holdings(access: AccessSession, start: Verdict, patient_id: str) -> Holdings:
    held = Holdings()
    resources = await _matches(access, start, None, [], ("Patient", patient_id))
    resources += await _matches(access, start, "Task", [("patient", f"Patient/{patient_id}")], None)
    for resource in resources:
        meta = resource.get("meta") or {}
        held.types.setdefault(str(resource.get("resourceType")), TypeHeld()).add(meta.get("lastUpdated"))
        if isinstance(meta.get("source"), str):
            held.sources[meta["source"]] += 1
        if resource.get("resourceType") == "Consent" and resource.get("status") == "active":
            for key in _provision_purposes(resource.get("provision") or {}):
                held.consent_purposes.setdefault(key, set()).add(f"Consent/{resource.get('id')}")
    return held


async def trail(store: Store, patient_id: str, limit: int) -> Trail:
    found = Trail()
    before: int | None = None
    while found.examined < limit:
        size = min(500, limit - found.examined)
        rows = await store.audit.events(f"Patient/{patient_id}", size, before)
        for _, event in rows:
            found.examined += 1
            line = access_log_entry(event)
            if line.get("outcome") != "success" or is_delivery(event):
                continue
            assumed = assumed_purpose(event)
            found.purposes.update([assumed] if assumed else line.get("why", []))
            if line.get("action") in WRITES:
                who, role, organization = (str(line.get(k, "")) for k in ("who", "role", "organization"))
                found.authors[(who, role, organization)] += 1
        if len(rows) < size:
            return found
        before = rows[-1][0]
    found.complete = False
    return found
