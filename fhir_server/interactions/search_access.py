"""Search features the access policy restricts to callers authorised for the whole type (docs/security.md).

Results themselves pass the policy in the session (security/paging.py); these are refusals that depend
only on the query and the caller, never on data, so they leak nothing."""

from __future__ import annotations

from typing import Any

from fhir_server.errors import FhirError
from fhir_server.search.query import ChainClause, HasClause, SearchQuery
from fhir_server.security.policy import Decision, Verdict


def indirect(query: Any) -> bool:
    """Does the query judge resources by *other* resources (chained parameters, ``_has``)?"""
    return any(isinstance(clause, ChainClause | HasClause) for clause in getattr(query, "clauses", ()))


def refuse_indirect(query: Any, start: Verdict, enabled: bool) -> None:
    """Chains and ``_has`` test resources the policy never judged: matching on them would disclose facts
    about data the caller may not see (that some hidden Observation has a code, that a hidden Patient has
    a name). They are open only to callers authorised for the whole type (docs/security.md)."""
    if enabled and start.decision is not Decision.AUTHORIZED and indirect(query):
        raise FhirError("forbidden", "chained parameters and _has are only available to callers authorised for "
                        "the whole type: they would test resources the access policy has not judged",
                        code="forbidden")


def refuse_counting(query: SearchQuery, start: Verdict, enabled: bool) -> None:
    """A count over resources the caller may partly not see would disclose how many there are."""
    if enabled and query.summary == "count" and start.decision is not Decision.AUTHORIZED:
        raise FhirError("forbidden", "_summary=count is only available to callers authorised for the whole type; "
                        "counts must not reveal resources the access policy hides", code="forbidden")
