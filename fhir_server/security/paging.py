"""Search and history pages through the access policy (the session's ``search`` and ``history``).

A page holds only what the caller may see. Two rules keep hidden data from showing through the shape
of the answer (docs/security.md "Hidden means absent"):

* a page is **filled**: when matches on it are withheld, the following ones are read (never more than
  the rows still needed, so the next cursor points just past the last row judged) until the page is
  full, the data end, or ``SCAN_BUDGET`` rows were judged. Twelve empty pages with ``next`` links would
  count hidden resources; one page with the visible ones does not;
* includes are followed only **from visible resources**, one round at a time, each round judged before
  the next (``:iterate``): an include must not reveal what a hidden match points to.

``Bundle.total`` is dropped whenever results are judged one by one (``total_allowed``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fhir_server.search.cursor import decode_cursor
from fhir_server.search.query import (
    IncludeSpec,
    ParamClause,
    ReferenceValue,
    SearchMatch,
    SearchQuery,
    SearchResult,
    TokenValue,
)
from fhir_server.security.audit.balp import AuditTarget
from fhir_server.security.policy import Action, Decision, Verdict
from fhir_server.storage.protocols import HistoryPage, HistoryQuery, Store, StoredResource

if TYPE_CHECKING:
    from fhir_server.security.session import AccessSession, Judged

#: Rows judged at most to fill one page (beyond it, a short page keeps its ``next`` link).
SCAN_BUDGET = 2000
#: ``:iterate`` rounds after the first (each only follows what the previous round added).
MAX_ITERATIONS = 4
#: Include candidates read at most per page, as a multiple of ``max_included`` (bounded work whatever
#: the caller may see; issue 12).
INCLUDE_SCAN_FACTOR = 10
WITHHELD = "results withheld by the access policy"


def as_stored(match: SearchMatch) -> StoredResource:
    """A search match as the stored version the policy judges (its data and stored patients)."""
    return StoredResource(match.resource_type, match.resource_id, 0, "", False, match.data, "PUT", match.patients)


def targeted_patients(query: SearchQuery) -> set[str]:
    """The patients a search names (compartment, ``patient=``, ``subject=Patient/x``, ``Patient?_id=``):
    whose access log shows the attempt when nothing visible came back (AC-14, AC-24)."""
    out: set[str] = set()
    if query.compartment is not None and query.compartment[0] == "Patient":
        out.add(query.compartment[1])
    for clause in query.clauses:
        if not isinstance(clause, ParamClause):
            continue
        for value in clause.values:
            if isinstance(value, ReferenceValue) and value.ref_id and (
                    value.ref_type == "Patient" or (value.ref_type is None and clause.code == "patient")):
                out.add(value.ref_id)
        if clause.code == "_id" and query.resource_types == ("Patient",):
            out |= {v.code for v in clause.values if isinstance(v, TokenValue) and v.code}
    return out


async def fill_search(access: AccessSession, store: Store, query: SearchQuery, target: AuditTarget,
                      start: Verdict) -> SearchResult:
    base = access.restricted(replace(query, includes=()), Action.SEARCH)
    if not access.enabled or start.decision is Decision.AUTHORIZED:
        result: SearchResult = await store.search(base)
        included, capped = await _includes(access, store, query, list(result.matches), judged=False)
        access.record(target, start, set())
        return replace(result, matches=(*result.matches, *(m for m, _ in included)), includes_capped=capped)
    visible, withheld, result, first = await _fill(access, store, base)
    included, capped = await _includes(access, store, query, [m for m, _ in visible], judged=True)
    kept = visible + included
    _record(access, target, query, kept, withheld)
    return SearchResult(tuple(m for m, _ in kept), None, result.next_cursor if result.next_cursor else None,
                        first.prev_cursor, capped)


async def _fill(access: AccessSession, store: Store, base: SearchQuery
                ) -> tuple[list[tuple[SearchMatch, Judged]], int, SearchResult, SearchResult]:
    result: SearchResult = await store.search(base)
    first = result
    visible: list[tuple[SearchMatch, Judged]] = []
    scanned = withheld = 0
    forward = base.cursor is None or base.cursor.direction == "next"
    while True:
        matches = [m for m in result.matches if m.mode == "match"]
        scanned += len(matches)
        kept = await access.keep_visible(Action.SEARCH, [(m, as_stored(m)) for m in matches])
        visible += kept
        withheld += len(matches) - len(kept)
        missing = base.count - len(visible)
        if missing <= 0 or not forward or result.next_cursor is None or scanned >= SCAN_BUDGET:
            return visible, withheld, result, first
        result = await store.search(replace(base, cursor=decode_cursor(result.next_cursor), count=missing))


async def _includes(access: AccessSession, store: Store, query: SearchQuery, sources: list[SearchMatch], *,
                    judged: bool) -> tuple[list[tuple[SearchMatch, Judged | None]], bool]:
    """The includes of a page, round by round from what the caller may see, and whether the page's
    include cap (``max_included`` kept, or ``INCLUDE_SCAN_FACTOR`` times as many read) cut them short.
    The warning that a cut adds to the Bundle says the same words whichever bound applied."""
    if not query.includes or not sources:
        return [], False
    cap, budget = query.max_included, query.max_included * INCLUDE_SCAN_FACTOR
    seen = {(m.resource_type, m.resource_id) for m in sources}
    out: list[tuple[SearchMatch, Judged | None]] = []
    current = sources
    for round_no in range(MAX_ITERATIONS + 1):
        specs: tuple[IncludeSpec, ...] = query.includes if round_no == 0 else tuple(
            s for s in query.includes if s.iterate)
        if not specs or not current:
            break
        room = min(budget, cap - len(out)) if not judged else budget
        found = [m for m in await store.include(specs, current, room + 1) if (m.resource_type, m.resource_id)
                 not in seen]
        cut = len(found) > room
        found = found[:room]
        budget -= len(found)
        seen |= {(m.resource_type, m.resource_id) for m in found}
        if judged:
            kept: list[tuple[SearchMatch, Judged | None]] = list(
                await access.keep_visible(Action.SEARCH, [(m, as_stored(m)) for m in found]))
        else:
            kept = [(m, None) for m in found]
        out += kept
        if len(out) > cap:
            return out[:cap], True
        if cut or budget <= 0:
            return out, True
        current = [m for m, _ in kept]
    return out, False


def _record(access: AccessSession, target: AuditTarget, query: SearchQuery,
            kept: list[tuple[SearchMatch, Judged]] | list[Any], withheld: int) -> None:
    """One success event per patient whose data was returned (``record_disclosed``); the attempt on the
    targeted patients that got nothing visible."""
    patients = record_disclosed(access, target, [judged for _, judged in kept])
    unseen = targeted_patients(query) - patients
    if withheld or (not kept and unseen):
        access.refused(target, WITHHELD if withheld else "nothing visible matched", unseen)


def record_disclosed(access: AccessSession, target: AuditTarget, judged: list[Judged]) -> set[str]:
    """What a page disclosed, recorded: one success event per patient whose data it holds, with a
    break-glass verdict when one was used (so BTG is audited, AC-02) and, per patient, the flags of the
    accesses to that patient's data (AC-20). The patients; nothing is recorded for an empty page."""
    patients: set[str] = set()
    for item in judged:
        patients |= item.patients
    if not judged:
        return patients
    verdicts = [item.verdict for item in judged]
    chosen = next((v for v in verdicts if v.emergency), verdicts[0])
    flags = tuple(dict.fromkeys(f for v in verdicts for f in v.flags))
    if flags == chosen.flags:
        access.record(target, chosen, patients)
        return patients
    by_patient: dict[str, list[str]] = {}
    for item in judged:
        for pid in item.patients:
            by_patient.setdefault(pid, []).extend(item.verdict.flags)
    for pid in sorted(patients):
        access.record(target, replace(chosen, flags=tuple(dict.fromkeys(by_patient.get(pid, [])))), [pid])
    if not patients:
        access.record(target, replace(chosen, flags=flags), patients)
    return patients


async def fill_history(access: AccessSession, store: Store, query: HistoryQuery, start: Verdict,
                       target: AuditTarget) -> tuple[HistoryPage, list[StoredResource]]:
    """One page of history with only the versions the caller may see, and what it disclosed recorded
    with the verdicts that let each version through (``record_disclosed``)."""
    page: HistoryPage = await store.history(query)
    if not access.enabled or start.decision is Decision.AUTHORIZED:
        if page.entries:
            access.record(target, start, set())
        return page, page.entries
    first = page
    visible: list[tuple[StoredResource, Judged]] = []
    scanned = 0
    while True:
        scanned += len(page.entries)
        visible += await _visible_versions(access, store, page.entries)
        missing = query.count - len(visible)
        if missing <= 0 or query.after_seq is not None or page.next_cursor is None or scanned >= SCAN_BUDGET:
            break
        page = await store.history(replace(query, before_seq=page.next_cursor, count=missing))
    record_disclosed(access, target, [judged for _, judged in visible])
    entries = [stored for stored, _ in visible]
    return replace(page, entries=entries, previous_cursor=first.previous_cursor), entries


async def _visible_versions(access: AccessSession, store: Store, entries: list[StoredResource]
                            ) -> list[tuple[StoredResource, Judged]]:
    """Each version judged on its own content; a deletion on the version it deleted."""
    judged_on: list[tuple[StoredResource, StoredResource]] = []
    for stored in entries:
        if stored.data is not None:
            judged_on.append((stored, stored))
        elif stored.version > 1:
            prior = await store.vread(stored.type, stored.id, stored.version - 1)
            if prior is not None and prior.data is not None:
                judged_on.append((stored, prior))
    return await access.keep_visible(Action.READ, judged_on)
