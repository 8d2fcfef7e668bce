"""SMART v2 granular scopes: ``patient/Observation.rs?category=vital-signs`` as a restriction (issue 16).

SMART App Launch 2.x, "finer-grained resource constraints using search parameters": a scope with a
query grants its permissions only on the resources that match the query; several scopes on one type
are OR-ed, and a scope on the type without a query covers every resource of it. So for one resource,
one permission letter, the granting scopes are the unrestricted ones plus the granular ones whose query
the resource matches.

*One rule.* "Does this resource match the query" is the search engine's answer, never a second
matcher: the query is parsed by ``parse_search`` (the server's SearchParameter definitions), the
resource's values are the index rows the one indexer extracts, and the match is the planner's own SQL
(storage/sqlite/search/one.py), handed to the policy as a :data:`ResourceMatcher` by the composition
root (fhir_server/backends.py). A policy without a matcher lets granular scopes grant nothing.
Searches get the same restriction as a clause (:func:`restrict_query`), so pages are filled, and
included and counted, from matching resources only; each resource is judged again by the policy.

*What a scope's query may hold* (checked when the built-in server grants a scope, and when a token is
verified): search parameters of the scope's type (for ``*``: those defined on Resource) of type
token, reference, string, date, uri, number or quantity, with the modifiers that need nothing but the
resource itself (:data:`MODIFIERS`); several parameters are AND-ed, comma-separated values OR-ed, as
in a search. Not supported, and refused: chained parameters, ``_has``, result controls (``_count``,
``_include`` …), composite and special parameters, and the terminology modifiers ``:in``, ``:not-in``,
``:above``, ``:below`` (their answer depends on stored ValueSets, not on the resource).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

from fhir_server.errors import FhirError
from fhir_server.search.errors import SearchError
from fhir_server.search.query import AnyOfClause, Clause, SearchQuery
from fhir_server.security.auth.scopes import Scope, parse_scope, parse_scopes

log = logging.getLogger(__name__)

#: Does this resource match this search (its clauses)? The search engine's answer (one.py).
ResourceMatcher = Callable[[SearchQuery, dict[str, Any]], bool]
Branch = tuple[Clause, ...]

#: Parameter types a scope's query may use, and the modifiers each may carry (None: no modifier).
MODIFIERS: dict[str, frozenset[str | None]] = {
    "token": frozenset({None, "not", "text", "missing", "of-type"}),
    "reference": frozenset({None, "missing", "identifier"}),  # and a resource type (subject:Patient)
    "string": frozenset({None, "exact", "contains", "missing"}),
    "date": frozenset({None, "missing"}),
    "uri": frozenset({None, "above", "below", "missing"}),
    "number": frozenset({None, "missing"}),
    "quantity": frozenset({None, "missing"}),
}
#: Search result parameters: they shape an answer, they do not select resources.
CONTROLS = frozenset({"_count", "_sort", "_include", "_revinclude", "_summary", "_elements", "_total",
                      "_cursor", "_format", "_pretty", "_type", "_contained", "_containedType", "_query"})


class ScopeError(ValueError):
    """A granular scope whose query this server cannot enforce."""


def _parse(resource_type: str | None, query: str) -> SearchQuery:
    """The scope's query as a strict search of the type (``*``: a system-level search)."""
    from fhir_server.definitions import get_definitions
    from fhir_server.search.indexer import get_indexer
    from fhir_server.search.parse import lookup, parse_search

    pairs = parse_qsl(query, keep_blank_values=True)
    if not pairs:
        raise ScopeError("the query after '?' is empty")
    types = (resource_type,) if resource_type else ()
    for name, value in pairs:
        code, _, modifier = name.partition(":")
        if code in CONTROLS:
            raise ScopeError(f"'{code}' is a result parameter, not a restriction")
        if code == "_has" or "." in code or "." in modifier:
            raise ScopeError(f"'{name}': chained parameters and _has are not supported in scopes")
        if value == "":
            raise ScopeError(f"'{name}' has no value")
        d = lookup(get_indexer(), types, code)
        if d is None:
            where = resource_type or "every type (Resource)"
            raise ScopeError(f"'{code}' is not a search parameter of {where} that this server supports")
        allowed = MODIFIERS.get(d.type)
        if allowed is None:
            raise ScopeError(f"'{code}' is a {d.type} parameter; scopes support token, reference, string, date, "
                             f"uri, number and quantity parameters")
        is_type = d.type == "reference" and modifier in get_definitions().resource_types
        if (modifier or None) not in allowed and not is_type:
            raise ScopeError(f"modifier ':{modifier}' is not supported in scopes on {d.type} parameters")
    try:
        parsed = parse_search(resource_type, pairs, strict=True)
    except SearchError as exc:
        raise ScopeError(str(exc)) from None
    except FhirError as exc:
        raise ScopeError(str(exc)) from None
    if not parsed.clauses:
        raise ScopeError("the query selects nothing")
    return parsed


def check_scope(text: str) -> None:
    """Raise :class:`ScopeError` when ``text`` is a granular resource scope this server cannot enforce
    (the built-in authorization server refuses to grant it, issue 16). Other scopes pass."""
    scope = parse_scope(text)
    if scope is None or scope.query is None:
        return
    _parse(None if scope.resource_type == "*" else scope.resource_type, scope.query)


def scope_problem(text: str) -> str | None:
    """Why a granular scope cannot be enforced, or None when it can (or is not granular)."""
    try:
        check_scope(text)
    except ScopeError as exc:
        return f"scope '{text}': {exc}"
    return None


@lru_cache(maxsize=4096)
def _branch(scope: Scope, resource_type: str) -> Branch | None:
    """The clauses of a granular scope's query on one resource type; None when it cannot be enforced
    (then the scope grants nothing on it, and that is logged once per scope and type)."""
    assert scope.query is not None
    try:
        if scope.resource_type == "*":
            _parse(None, scope.query)  # only parameters every type has
        return _parse(resource_type, scope.query).clauses
    except ScopeError as exc:
        log.warning("granular scope %s/%s.%s?%s grants nothing on %s: %s", scope.level, scope.resource_type,
                    "".join(sorted(scope.permissions)), scope.query, resource_type, exc)
        return None


def unenforceable(scopes: Iterable[str]) -> list[str]:
    """The problems of the granular scopes of a token that cannot be enforced (logged, never fatal: such a
    scope grants nothing, the others keep working)."""
    return [p for p in (scope_problem(s) for s in scopes) if p is not None]


def granular_on(scopes: tuple[str, ...], resource_type: str, letters: str) -> bool:
    """Does a granular scope decide whether some resources of the type are reached for ``letters``? (The
    compiled read by id must then decide each resource: its verdicts are not per type and patient.)"""
    parsed = parse_scopes(scopes)
    return any(s.granular and s.reaches(resource_type, letter) for s in parsed for letter in letters)


def granting_levels(scopes: tuple[str, ...], resource_type: str, letter: str, resource: dict[str, Any],
                    matcher: ResourceMatcher | None) -> frozenset[str]:
    """The levels (patient/user/system) of the scopes that grant ``letter`` on this very resource: the
    unrestricted scopes on its type, and the granular ones whose query it matches (OR-ed per level)."""
    levels: set[str] = set()
    pending: dict[str, list[Branch]] = {}
    for scope in parse_scopes(scopes):
        if not scope.reaches(resource_type, letter):
            continue
        if not scope.granular:
            levels.add(scope.level)
            continue
        branch = _branch(scope, resource_type)
        if branch is not None:
            pending.setdefault(scope.level, []).append(branch)
    for level, branches in pending.items():
        if level not in levels and matcher is not None and _matches(matcher, resource_type, branches, resource):
            levels.add(level)
    return frozenset(levels)


def _matches(matcher: ResourceMatcher, resource_type: str, branches: list[Branch], resource: dict[str, Any]) -> bool:
    query = SearchQuery((resource_type,), (AnyOfClause(resource_type, tuple(branches)),))
    try:
        return matcher(query, resource)
    except (SearchError, FhirError) as exc:  # validated when granted: only a changed definition gets here
        log.warning("granular scope match on %s failed, nothing granted: %s", resource_type, exc)
        return False


def restriction(scopes: tuple[str, ...], resource_type: str, letter: str) -> AnyOfClause | None:
    """The clause a search of ``resource_type`` needs for ``letter``: None when an unrestricted scope
    reaches the type (or no scope does: the gate decides that), else the OR of the granular queries."""
    branches: list[Branch] = []
    for scope in parse_scopes(scopes):
        if not scope.reaches(resource_type, letter):
            continue
        if not scope.granular:
            return None
        branch = _branch(scope, resource_type)
        if branch is not None:
            branches.append(branch)
    if not branches:
        return None if not granular_on(scopes, resource_type, letter) else AnyOfClause(resource_type, ())
    return AnyOfClause(resource_type, tuple(dict.fromkeys(branches)))


def restrict_query(query: SearchQuery, scopes: tuple[str, ...], letters: str) -> SearchQuery:
    """The search with the caller's granular restrictions added per searched type, so that pages, totals
    and include sources hold matching resources only. A system-level search without ``_type`` is left
    as it is: every resource it returns is judged by the policy (the restriction of its type)."""
    added: list[Clause] = []
    for resource_type in query.resource_types:
        for letter in dict.fromkeys(letters):
            clause = restriction(scopes, resource_type, letter)
            if clause is not None and clause not in added:
                added.append(clause)
    return replace(query, clauses=(*query.clauses, *added)) if added else query
