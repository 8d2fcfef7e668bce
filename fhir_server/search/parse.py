"""``parse_search``: HTTP search parameters -> ``SearchQuery`` (FHIR R4 search §3.1.1).

Unknown or unsupported parameters are ignored with a warning under ``Prefer: handling=lenient``
(the default) and rejected with 400 under ``handling=strict`` (R4 §3.1.1.1, issue 3 item 7).
Unknown modifiers and unparseable values are always 400.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from fhir_server.definitions import get_definitions
from fhir_server.i18n import msg
from fhir_server.search import parse_controls as pc
from fhir_server.search import parse_limits
from fhir_server.search.compartments import get_compartments
from fhir_server.search.cursor import decode_cursor
from fhir_server.search.errors import SearchError
from fhir_server.search.indexer import Indexer, get_indexer
from fhir_server.search.parse_values import (
    parse_composite,
    parse_modified,
    parse_reference_value,
    parse_token,
    split_escaped,
)
from fhir_server.search.query import (
    ChainClause,
    Clause,
    Cursor,
    HasClause,
    IncludeSpec,
    ParamClause,
    SearchQuery,
    SortKey,
    Summary,
    Total,
    Value,
)
from fhir_server.search.registry import SearchParamDef
from fhir_server.search.rows import IDENTIFIER_SUFFIX, OF_TYPE_SUFFIX
from fhir_server.validation.issues import Issue

_MODIFIERS = {
    "string": frozenset({"exact", "contains", "missing"}),
    "token": frozenset({"text", "not", "above", "below", "in", "not-in", "of-type", "missing"}),
    "reference": frozenset({"missing", "identifier", "above", "below"}),
    "date": frozenset({"missing"}),
    "number": frozenset({"missing"}),
    "quantity": frozenset({"missing"}),
    "uri": frozenset({"above", "below", "missing"}),
    "composite": frozenset({"missing"}),
}
_COLUMN_MODIFIERS = {"_id": frozenset({"not"}), "_lastUpdated": frozenset()}
_PASSIVE = frozenset({"_format", "_pretty"})  # handled by the HTTP layer; kept in links


@dataclass
class _State:
    indexer: Indexer
    strict: bool
    base_url: str | None
    types: tuple[str, ...]
    warnings: list[Issue] = field(default_factory=list)
    clauses: list[Clause] = field(default_factory=list)
    used: list[tuple[str, str]] = field(default_factory=list)
    sort: tuple[SortKey, ...] = ()
    count: int = field(default_factory=lambda: pc.DEFAULT_COUNT)
    cursor: Cursor | None = None
    total: Total | None = None
    summary: Summary | None = None
    elements: tuple[str, ...] | None = None
    includes: list[IncludeSpec] = field(default_factory=list)

    def ignore(self, name: str, message: str) -> None:
        """Unknown/unsupported: 400 when strict, otherwise a warning in the Bundle (R4 §3.1.1.1)."""
        if self.strict:
            raise SearchError(name, message, code="not-supported")
        self.warnings.append(Issue("warning", "not-supported", f"Parameter '{name}' ignored: {message}", name))


def parse_search(
    resource_type: str | None,
    params: list[tuple[str, str]],
    *,
    strict: bool,
    compartment: tuple[str, str] | None = None,
    base_url: str | None = None,
    indexer: Indexer | None = None,
) -> SearchQuery:
    """Parse a search request (type-level, system-level or compartment) into a ``SearchQuery``.

    ``base_url`` turns absolute references to this server into relative ones; ``indexer`` defaults to
    the process-wide one (its registry decides which parameters exist)."""
    parse_limits.check_request(params)
    state = _State(indexer or get_indexer(), strict, base_url, _search_types(resource_type, params, compartment))
    for name, value in params:
        if value == "" or name == "_type":
            continue  # empty values are ignored (R4 §3.1.1.3); _type was read above
        if name.split(":", 1)[0] in _CONTROLS:
            _CONTROLS[name.split(":", 1)[0]](state, name, value)
            continue
        clause = _parse_has(state, state.types, name, value) if name.startswith("_has:") else (
            _parse_clause(state, state.types, name, value))
        if clause is not None:
            state.clauses.append(clause)
            state.used.append((name, value))
    if state.cursor is not None and len(state.cursor.keys) != len(state.sort):
        raise SearchError("_cursor", "the paging cursor does not fit this query's _sort")
    types_param = [("_type", v) for n, v in params if n == "_type"]
    return SearchQuery(
        resource_types=state.types, clauses=tuple(state.clauses), compartment=compartment,
        sort=state.sort, count=state.count, cursor=state.cursor, total=state.total,
        summary=state.summary, elements=state.elements, includes=tuple(state.includes),
        warnings=tuple(state.warnings), used_params=tuple(types_param + state.used),
        max_included=parse_limits.LIMITS.max_included,
    )


def _search_types(
    resource_type: str | None, params: list[tuple[str, str]], compartment: tuple[str, str] | None
) -> tuple[str, ...]:
    known = get_definitions().resource_types
    if resource_type is not None and resource_type not in known:
        raise SearchError("type", f"'{resource_type}' is not a resource type", status=404, code="not-found")
    types: tuple[str, ...] = (resource_type,) if resource_type else ()
    for name, value in params:
        if name == "_type" and value:
            listed = pc.parse_types(value)
            types = tuple(t for t in listed if not types or t in types) if resource_type else listed
    if compartment is not None:
        members = get_compartments().types_in(compartment[0])
        if not members:
            raise SearchError("compartment", f"'{compartment[0]}' is not a compartment type", status=404,
                              code="not-found")
        outside = [t for t in types if t not in members]
        if outside:
            raise SearchError("compartment", f"{', '.join(outside)} cannot be in a {compartment[0]} compartment")
        types = types or members
    return types


def lookup(indexer: Indexer, types: tuple[str, ...], code: str) -> SearchParamDef | None:
    """The definition of ``code`` when it is searchable on every one of ``types`` with one type.
    With no types (system-level search), only the parameters defined on Resource apply."""
    if not types:
        d = indexer.searchable("Patient").get(code)
        return d if d is not None and d.base == ("Resource",) else None
    defs = [indexer.searchable(t).get(code) for t in types]
    if any(d is None for d in defs) or len({d.type for d in defs if d is not None}) != 1:
        return None
    return defs[0]


def _parse_clause(state: _State, types: tuple[str, ...], name: str, raw: str) -> Clause | None:
    head, dot, rest = name.partition(".")
    code, _, modifier = head.partition(":")
    d = lookup(state.indexer, types, code)
    if d is None:
        state.ignore(name, msg("search.unknown_parameter", types=", ".join(types) or msg("policy.all_types")))
        return None
    if dot:
        return _parse_chain(state, d, code, modifier or None, rest, raw)
    return _param_clause(state, d, code, modifier or None, raw)


def _param_clause(state: _State, d: SearchParamDef, code: str, modifier: str | None, raw: str) -> ParamClause:
    allowed = _COLUMN_MODIFIERS.get(code, _MODIFIERS.get(d.type, frozenset()))
    is_type_modifier = d.type == "reference" and modifier in get_definitions().resource_types
    if modifier is not None and modifier not in allowed and not is_type_modifier:
        raise SearchError(f"{code}:{modifier}", f"modifier ':{modifier}' is not supported on {d.type} parameters")
    parts = split_escaped(raw, ",")
    if modifier == "identifier":
        return ParamClause(code + IDENTIFIER_SUFFIX, "token", None, tuple(parse_token(code, p) for p in parts))
    if modifier == "of-type":
        values = tuple(parse_modified(code, "token", "of-type", p) for p in parts)
        return ParamClause(code + OF_TYPE_SUFFIX, "token", None, values)
    if d.type == "reference" and modifier != "missing" and modifier not in ("above", "below"):
        type_mod = modifier if is_type_modifier else None
        refs: tuple[Value, ...] = tuple(parse_reference_value(code, p, type_mod, state.base_url) for p in parts)
        return ParamClause(code, d.type, None, refs)
    component_types = _component_types(state, d)
    if d.type == "composite" and modifier is None:
        values = tuple(parse_composite(code, p, component_types) for p in parts)
        return ParamClause(code, d.type, None, values, component_types)
    return ParamClause(code, d.type, modifier, tuple(parse_modified(code, d.type, modifier, p) for p in parts))


def _component_types(state: _State, d: SearchParamDef) -> tuple[str, ...]:
    for resource_type in state.types:
        found = state.indexer.component_types(resource_type, d.code)
        if found:
            return found
    return ()


def _parse_chain(
    state: _State, d: SearchParamDef, code: str, modifier: str | None, rest: str, raw: str
) -> Clause | None:
    """``subject:Patient.name=x`` (R4 §3.1.1.4.13 chained parameters), any depth."""
    if d.type != "reference":
        raise SearchError(code, "only reference parameters can be chained")
    targets = (modifier,) if modifier else d.targets
    if modifier and modifier not in get_definitions().resource_types:
        raise SearchError(f"{code}:{modifier}", f"'{modifier}' is not a resource type")
    inner: list[tuple[str, Clause]] = []
    for target in targets:
        sub = _State(state.indexer, False, state.base_url, (target,))
        clause = _parse_clause(sub, (target,), rest, raw)
        if clause is not None:
            inner.append((target, clause))
    if not inner:
        state.ignore(f"{code}.{rest}", f"no target type of '{code}' has a searchable parameter '{rest}'")
        return None
    return ChainClause(code, tuple(inner))


def _parse_has(state: _State, types: tuple[str, ...], name: str, raw: str) -> Clause | None:
    """``_has:Observation:patient:code=x`` (R4 §3.1.1.4.14 reverse chaining), nestable."""
    parts = name.split(":", 3)
    if len(parts) != 4 or not all(parts):
        raise SearchError(name, "_has takes _has:Type:reference-parameter:parameter")
    _, source, code, rest = parts
    if source not in get_definitions().resource_types:
        raise SearchError(name, f"'{source}' is not a resource type")
    d = state.indexer.searchable(source).get(code)
    if d is None or d.type != "reference":
        state.ignore(name, f"'{code}' is not a reference parameter of {source}")
        return None
    if types and d.targets and not set(types) & set(d.targets):
        raise SearchError(name, f"{source}.{code} cannot reference {', '.join(types)}")
    sub = _State(state.indexer, state.strict, state.base_url, (source,))
    inner = _parse_has(sub, (source,), rest, raw) if rest.startswith("_has:") else (
        _parse_clause(sub, (source,), rest, raw))
    state.warnings.extend(sub.warnings)
    return HasClause(source, code, inner) if inner is not None else None


def _sort(state: _State, name: str, raw: str) -> None:
    keys = []
    items = [i.strip() for i in raw.split(",") if i.strip()]
    parse_limits.check_sort(len(items))
    for item in items:
        key = pc.sort_key(state.indexer, state.types, item)
        if key is None:
            state.ignore("_sort", f"cannot sort by '{item}'")
        else:
            keys.append(key)
    state.sort = tuple(keys)
    state.used.append((name, ",".join(("-" if k.descending else "") + k.code for k in keys)))


def _include(state: _State, name: str, raw: str) -> None:
    spec = pc.include_spec(state.indexer, name, raw, state.types)
    if isinstance(spec, str):
        state.ignore(name, spec)
        return
    state.includes.append(spec)
    state.used.append((name, raw))


def _simple(attr: str, parser: Callable[[str], object]) -> Callable[[_State, str, str], None]:
    def handle(state: _State, name: str, raw: str) -> None:
        if name != attr:
            raise SearchError(name, f"'{attr}' takes no modifiers")
        setattr(state, attr.lstrip("_"), parser(raw))
        state.used.append((name, raw))

    return handle


def _cursor(state: _State, name: str, raw: str) -> None:
    try:
        state.cursor = decode_cursor(raw)
    except ValueError as exc:
        raise SearchError("_cursor", str(exc)) from None


def _passive(state: _State, name: str, raw: str) -> None:
    state.used.append((name, raw))


_CONTROLS = {
    "_sort": _sort, "_include": _include, "_revinclude": _include, "_cursor": _cursor,
    "_count": _simple("_count", pc.parse_count), "_total": _simple("_total", pc.parse_total),
    "_summary": _simple("_summary", pc.parse_summary), "_elements": _simple("_elements", pc.parse_elements),
    "_format": _passive, "_pretty": _passive,
}
