"""The access policy on search results (issue 5 §2): every match and every ``_include`` /
``_revinclude`` passes ``can_see``; what the caller may not see is dropped, and then ``Bundle.total``
is omitted so that neither totals nor paging reveal hidden resources (docs/security.md)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson

from fhir_server.errors import FhirError
from fhir_server.search.query import ChainClause, HasClause, SearchQuery, SearchResult
from fhir_server.security.audit.balp import AuditTarget
from fhir_server.security.enforcement import AccessSession
from fhir_server.security.policy import Action, Decision, Verdict


def indirect(query: Any) -> bool:
    """Does the query judge resources by *other* resources (chained parameters, ``_has``)?"""
    return any(isinstance(clause, ChainClause | HasClause) for clause in getattr(query, "clauses", ()))


def refuse_indirect(query: Any, start: Verdict | None) -> None:
    """Chains and ``_has`` test resources the policy never judged: matching on them would disclose facts
    about data the caller may not see (that some hidden Observation has a code, that a hidden Patient has
    a name). They are open only to callers authorised for the whole type (docs/security.md)."""
    if start is not None and start.decision is not Decision.AUTHORIZED and indirect(query):
        raise FhirError("forbidden", "chained parameters and _has are only available to callers authorised for "
                        "the whole type: they would test resources the access policy has not judged",
                        code="forbidden")


def refuse_counting(query: SearchQuery, start: Verdict) -> None:
    """A count over resources the caller may partly not see would disclose how many there are."""
    if query.summary == "count" and start.decision is not Decision.AUTHORIZED:
        raise FhirError("forbidden", "_summary=count is only available to callers authorised for the whole type; "
                        "counts must not reveal resources the access policy hides", code="forbidden")


async def guard_result(access: AccessSession, start: Verdict, result: SearchResult, target: AuditTarget
                       ) -> SearchResult:
    """Drop what the caller may not see, record the access (one AuditEvent per patient, BALP)."""
    if not access.enabled:
        return result
    if start.decision is Decision.AUTHORIZED:
        access.record(target, start, set())
        return result
    judged = [(m, orjson.loads(m.data)) for m in result.matches if m.mode != "outcome"]
    visible = {id(m) for m in await access.keep_visible(Action.SEARCH, judged, target)}
    kept = [m for m in result.matches if m.mode == "outcome" or id(m) in visible]  # original order
    return replace(result, matches=tuple(kept), total=None)
