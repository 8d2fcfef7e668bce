"""The backend-neutral search query model (what ``parse_search`` produces and a backend runs).

No SQL here: the SQLite planner (``storage/sqlite/search``) and a future MongoDB planner both read
these values. Every clause is AND-ed with the others; the values inside one clause are OR-ed
(FHIR R4 search §3.1.1.3 "Combining parameters": repeated parameters AND, commas OR).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from fhir_server.validation.issues import Issue

Prefix = Literal["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"]
PREFIXES: tuple[Prefix, ...] = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


@dataclass(frozen=True, slots=True)
class TokenValue:
    system: str | None
    code: str | None
    any_system: bool = True  # no "|" in the value: any system matches


@dataclass(frozen=True, slots=True)
class TextValue:
    text: str  # :text on a token (matched against displays and CodeableConcept.text)


@dataclass(frozen=True, slots=True)
class InValue:
    valueset: str  # :in / :not-in value set canonical URL


@dataclass(frozen=True, slots=True)
class DateValue:
    prefix: Prefix
    low: int  # half-open [low, high) in microseconds since the epoch (dates.py)
    high: int


@dataclass(frozen=True, slots=True)
class NumberValue:
    prefix: Prefix
    value: float
    low: float  # implicit range by significant figures (numbers.py)
    high: float


@dataclass(frozen=True, slots=True)
class QuantityValue:
    number: NumberValue
    system: str | None
    code: str | None  # with no system: matches the coded unit or the human-readable unit


@dataclass(frozen=True, slots=True)
class StringValue:
    value: str


@dataclass(frozen=True, slots=True)
class ReferenceValue:
    ref_type: str | None
    ref_id: str | None
    version: str | None = None
    url: str | None = None  # absolute or canonical URL


@dataclass(frozen=True, slots=True)
class UriValue:
    value: str


@dataclass(frozen=True, slots=True)
class MissingValue:
    missing: bool


@dataclass(frozen=True, slots=True)
class CompositeValue:
    parts: tuple[Value, ...]


Value = (
    TokenValue | TextValue | InValue | DateValue | NumberValue | QuantityValue | StringValue
    | ReferenceValue | UriValue | MissingValue | CompositeValue
)


@dataclass(frozen=True, slots=True)
class ParamClause:
    """``code[:modifier]=v1,v2`` on the searched type(s)."""

    code: str
    type: str
    modifier: str | None
    values: tuple[Value, ...]
    component_types: tuple[str, ...] = ()  # composite: the type of each component


@dataclass(frozen=True, slots=True)
class ChainClause:
    """``code[:Type].inner`` — resources whose reference ``code`` points to a target matching ``inner``."""

    code: str
    targets: tuple[tuple[str, Clause], ...]  # target type -> clause on that type


@dataclass(frozen=True, slots=True)
class HasClause:
    """``_has:Source:code:inner`` — resources referenced through ``Source.code`` by a matching Source."""

    source_type: str
    code: str
    inner: Clause


@dataclass(frozen=True, slots=True)
class AnyOfClause:
    """Resources of ``resource_type`` match when every clause of at least one branch matches; resources of
    other types are not restricted. No client writes it: the access policy adds it to a search to honour
    SMART v2 granular scopes (``patient/Observation.rs?category=…``, several scopes on a type OR-ed,
    security/policy/granular.py). No branch: nothing of that type matches."""

    resource_type: str
    branches: tuple[tuple[Clause, ...], ...]


Clause = ParamClause | ChainClause | HasClause | AnyOfClause


@dataclass(frozen=True, slots=True)
class SortKey:
    code: str
    type: str
    descending: bool


@dataclass(frozen=True, slots=True)
class IncludeSpec:
    source_type: str  # "*" only for `_include=*`
    code: str  # reference parameter, or "*" for all of them
    target_type: str | None
    iterate: bool
    reverse: bool  # _revinclude


@dataclass(frozen=True, slots=True)
class Cursor:
    """A keyset position: the sort values and (type, id) of the row a page starts after/before."""

    direction: Literal["next", "prev"]
    keys: tuple[str | int | float | None, ...]
    resource_type: str
    resource_id: str
    total: int | None = None  # the total counted for the first page, reused when _total is not given


Total = Literal["none", "estimate", "accurate"]
Summary = Literal["true", "text", "data", "count", "false"]


@dataclass(frozen=True, slots=True)
class SearchQuery:
    resource_types: tuple[str, ...]  # empty: every type (system-level search without _type)
    clauses: tuple[Clause, ...] = ()
    compartment: tuple[str, str] | None = None
    sort: tuple[SortKey, ...] = ()
    count: int = 50
    cursor: Cursor | None = None
    total: Total | None = None  # None: the server's choice (accurate, cheap when it can be)
    summary: Summary | None = None
    elements: tuple[str, ...] | None = None
    includes: tuple[IncludeSpec, ...] = ()
    warnings: tuple[Issue, ...] = ()
    used_params: tuple[tuple[str, str], ...] = field(default=())  # for the self link
    max_included: int = 1000  # _include/_revinclude resources per page at most (search_max_included)


@dataclass(frozen=True, slots=True)
class SearchMatch:
    rid: int
    resource_type: str
    resource_id: str
    data: bytes
    mode: Literal["match", "include", "outcome"]
    #: the compartment's patients stored with the version ("" none; None unknown: computed from data)
    patients: str | None = None


@dataclass(frozen=True, slots=True)
class SearchResult:
    matches: tuple[SearchMatch, ...]
    total: int | None
    next_cursor: str | None
    prev_cursor: str | None
    includes_capped: bool = False  # more resources would have been included than max_included
