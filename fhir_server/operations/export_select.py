"""Which stored resources a bulk export reads, page by page (Bulk Data Access IG v2 "Bulk Data
Kick-off Request": system, all patients, a group), through the caller's access session: each page
holds only what the policy lets this caller export (``Action.EXPORT``), with the number withheld.

Every read is a search (``_count=1000``, keyset cursor paging, no totals), bounded by the job's
``transactionTime`` (``_lastUpdated le``: the IG says resources changed after it SHOULD NOT be
included) and by ``_since`` (``_lastUpdated gt``: "changed after the supplied time").

* system: one search over the requested types (all types when ``_type`` is absent);
* all patients: one search over the Patient-compartment types, keeping the resources that are in
  some patient's compartment (search/compartments.py);
* a list of patients (``patient`` parameter, or a Group's members): a compartment search per
  patient, each resource once even when it belongs to several of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fhir_server.operations.export_jobs import ExportJob
from fhir_server.operations.export_params import SYSTEM
from fhir_server.search import parse_search
from fhir_server.search.compartments import get_compartments
from fhir_server.search.query import SearchMatch
from fhir_server.security.policy import Action
from fhir_server.security.session import AccessSession, Judged

PAGE_SIZE = 1000
#: One page: the matches the caller may export, each with the verdict that allowed it, and how many
#: the page withheld.
Page = tuple[list[tuple[SearchMatch, Judged]], int]


def _bounds(job: ExportJob) -> list[tuple[str, str]]:
    out = [("_lastUpdated", "le" + job.transaction_time)]
    if job.spec.since:
        out.append(("_lastUpdated", "gt" + job.spec.since))
    return out


async def _stream(access: AccessSession, params: list[tuple[str, str]], compartment: tuple[str, str] | None
                  ) -> AsyncIterator[tuple[list[tuple[SearchMatch, Judged]], int]]:
    paging = [("_count", str(PAGE_SIZE)), ("_total", "none")]
    query = parse_search(None, [*params, *paging], strict=True, compartment=compartment)
    async for kept, seen in access.stream(query, Action.EXPORT):
        yield kept, seen


def compartment_types(requested: tuple[str, ...]) -> tuple[str, ...]:
    return requested or get_compartments().types_in("Patient")


async def pages(access: AccessSession, job: ExportJob) -> AsyncIterator[Page]:
    """The job's resources the caller may export, one page at a time, each at most once."""
    bounds = _bounds(job)
    if job.spec.level == SYSTEM:
        types = [("_type", ",".join(job.spec.types))] if job.spec.types else []
        async for kept, seen in _stream(access, [*types, *bounds], None):
            yield kept, seen - len(kept)
    elif job.patients is None:
        types = [("_type", ",".join(compartment_types(job.spec.types)))]
        async for kept, seen in _stream(access, [*types, *bounds], None):
            # resources of compartment types that are in no patient's compartment are not patient data
            members = [(m, j) for m, j in kept if j.patients]
            yield members, seen - len(kept)
    else:
        async for page in _per_patient(access, job, bounds):
            yield page


async def _per_patient(access: AccessSession, job: ExportJob, bounds: list[tuple[str, str]]) -> AsyncIterator[Page]:
    types = [("_type", ",".join(job.spec.types))] if job.spec.types else []
    seen: set[tuple[str, str]] = set()
    for patient_id in job.patients or ():
        async for kept, count in _stream(access, [*types, *bounds], ("Patient", patient_id)):
            fresh = [(m, j) for m, j in kept if (m.resource_type, m.resource_id) not in seen]
            seen.update((m.resource_type, m.resource_id) for m, _ in fresh)
            if fresh or count > len(kept):
                yield fresh, count - len(kept)
