"""Which stored resources a bulk export reads, page by page (Bulk Data Access IG v2 "Bulk Data
Kick-off Request": system, all patients, a group).

Every read is a store search (``_count=1000``, keyset cursor paging, no totals), bounded by the
job's ``transactionTime`` (``_lastUpdated le``: the IG says resources changed after it SHOULD NOT be
included) and by ``_since`` (``_lastUpdated gt``: "changed after the supplied time").

* system: one search over the requested types (all types when ``_type`` is absent);
* all patients: one search over the Patient-compartment types, keeping the resources that are in
  some patient's compartment (R4 CompartmentDefinition patient);
* a list of patients (``patient`` parameter, or a Group's members): a compartment search per
  patient, each resource once even when it belongs to several of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from fhir_server.operations.export_jobs import ExportJob
from fhir_server.operations.export_params import SYSTEM
from fhir_server.search import parse_search
from fhir_server.search.compartments import get_compartments
from fhir_server.search.query import SearchMatch
from fhir_server.security.policy import patient_ids_of

PAGE_SIZE = 1000
#: One page: each match with its parsed JSON when selecting it already needed that (else None).
Page = list[tuple[SearchMatch, dict[str, Any] | None]]


def _bounds(job: ExportJob) -> list[tuple[str, str]]:
    out = [("_lastUpdated", "le" + job.transaction_time)]
    if job.spec.since:
        out.append(("_lastUpdated", "gt" + job.spec.since))
    return out


async def _stream(store: Any, params: list[tuple[str, str]], compartment: tuple[str, str] | None
                  ) -> AsyncIterator[list[SearchMatch]]:
    cursor: str | None = None
    while True:
        paging = [("_count", str(PAGE_SIZE)), ("_total", "none"), *([("_cursor", cursor)] if cursor else [])]
        query = parse_search(None, [*params, *paging], strict=True, compartment=compartment)
        result = await store.search(query)
        yield [m for m in result.matches if m.mode == "match"]
        cursor = result.next_cursor
        if not cursor:
            return


def compartment_types(requested: tuple[str, ...]) -> tuple[str, ...]:
    return requested or get_compartments().types_in("Patient")


async def pages(store: Any, job: ExportJob) -> AsyncIterator[Page]:
    """The job's resources, one page at a time, each at most once."""
    bounds = _bounds(job)
    if job.spec.level == SYSTEM:
        types = [("_type", ",".join(job.spec.types))] if job.spec.types else []
        async for matches in _stream(store, [*types, *bounds], None):
            yield [(m, None) for m in matches]
    elif job.patients is None:
        types = [("_type", ",".join(compartment_types(job.spec.types)))]
        async for matches in _stream(store, [*types, *bounds], None):
            yield _members(matches)
    else:
        async for page in _per_patient(store, job, bounds):
            yield page


def _members(matches: list[SearchMatch]) -> Page:
    """Resources of compartment types that are in no patient's compartment are not patient data."""
    out: Page = []
    for match in matches:
        resource = orjson.loads(match.data)
        if patient_ids_of(resource):
            out.append((match, resource))
    return out


async def _per_patient(store: Any, job: ExportJob, bounds: list[tuple[str, str]]) -> AsyncIterator[Page]:
    types = [("_type", ",".join(job.spec.types))] if job.spec.types else []
    seen: set[tuple[str, str]] = set()
    for patient_id in job.patients or ():
        async for matches in _stream(store, [*types, *bounds], ("Patient", patient_id)):
            fresh: Page = [(m, None) for m in matches if (m.resource_type, m.resource_id) not in seen]
            seen.update((m.resource_type, m.resource_id) for m, _ in fresh)
            if fresh:
                yield fresh
