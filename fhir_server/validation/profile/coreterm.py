"""Membership checks against the R4 core ValueSets and CodeSystems (the fallback terminology).

Used when no terminology service is given, or when it cannot tell. The codes come from the one ValueSet
expansion (``fhir_server.definitions.expansion``) and the same membership index the terminology service uses;
a code system the core does not hold (or holds in part) makes the answer "cannot tell" (None), not a guess.
"""

from __future__ import annotations

from functools import cache

from fhir_server.definitions.expansion import ExpansionError, core_source, evaluate
from fhir_server.definitions.membership import MembershipIndex

__all__ = ["core_membership"]


@cache
def _index(url: str) -> MembershipIndex | None:
    source = core_source()
    vs = source.value_set(url)
    if vs is None:
        return None
    try:
        return MembershipIndex.build(evaluate(source, vs), source)
    except ExpansionError:
        return None


def core_membership(value_set: str, system: str | None, code: str) -> bool | None:
    """True/False when the core definitions decide; None when they cannot (unknown or not fully held)."""
    index = _index(value_set)
    return None if index is None else index.check(system, code)
