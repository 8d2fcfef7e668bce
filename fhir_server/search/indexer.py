"""Index extraction at write time: every search parameter of a resource type, compiled once.

``Indexer.extract(resource)`` runs on the ingest hot path (budget: about 100 µs for a typical
Synthea resource, issue 3), so each type's parameters are compiled on first use into plain JSON
paths (``fhirpath.compiler``) with a converter per parameter type (``converters``). Expressions the
compiled subset cannot express use the full FHIRPath engine instead (``fhirpath.fallback``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from fhir_server.search.compartments import get_compartments
from fhir_server.search.converters import ACCEPTED, CONVERTERS, Converter, RowSink
from fhir_server.search.extractors import Extractor, compile_extractor
from fhir_server.search.fhirpath import (
    CompiledPath,
    CompileError,
    compile_expression,
    compile_fallback,
    compile_relative,
    parse,
    walk,
)
from fhir_server.search.fhirpath.compiler import GET
from fhir_server.search.registry import Registry, SearchParamDef, get_registry
from fhir_server.search.rows import IndexRows

log = logging.getLogger(__name__)

# Answered from the resource table's own columns, not from index rows.
COLUMN_PARAMS = frozenset({"_id", "_lastUpdated"})


@dataclass(frozen=True, slots=True)
class _Path:
    ops: tuple[Any, ...]
    leaf: str
    valueset: str | None
    first_key: str | None  # top-level JSON key the path needs; absent -> nothing to index


@dataclass(frozen=True, slots=True)
class _Component:
    code: str  # ``<param>$<n>``
    type: str  # parameter type of the component (number, date, token ...)
    convert: Converter
    paths: tuple[_Path, ...]


@dataclass(frozen=True, slots=True)
class _ParamPlan:
    code: str
    convert: Converter
    paths: tuple[_Path, ...]
    fallback: Callable[[dict[str, Any]], list[Any]] | None = None
    components: tuple[tuple[_Path, tuple[_Component, ...]], ...] = ()  # composites: base path -> parts


def _path(p: CompiledPath) -> _Path:
    first = p.ops[0][1] if p.ops and p.ops[0][0] == GET else None
    return _Path(p.ops, p.leaf_type, p.valueset, first)


class Indexer:
    """Extracts the index rows of resources; compiles each resource type's parameters once."""

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry or get_registry()
        self._plans: dict[str, tuple[_ParamPlan, ...]] = {}
        self._searchable: dict[str, dict[str, SearchParamDef]] = {}
        self.unsupported: dict[tuple[str, str], str] = {}  # (resource type, code) -> reason
        self.fallback_params: set[tuple[str, str]] = set()
        self._subsets: dict[tuple[str, frozenset[str]], tuple[_ParamPlan, ...]] = {}
        self._extractors: dict[str, Extractor] = {}

    def plans(self, resource_type: str) -> tuple[_ParamPlan, ...]:
        plans = self._plans.get(resource_type)
        if plans is None:
            plans = self._compile_type(resource_type)
            self._plans[resource_type] = plans
        return plans

    def warm(self) -> None:
        """Compile every resource type now (about 0.3 s), so that no write pays for it later."""
        from fhir_server.definitions import get_definitions

        for resource_type in sorted(get_definitions().resource_types):
            self.searchable(resource_type)

    def searchable(self, resource_type: str) -> dict[str, SearchParamDef]:
        """The parameters of a type that can be searched (indexed, or answered from columns)."""
        found = self._searchable.get(resource_type)
        if found is None:
            indexed = {p.code for p in self.plans(resource_type)}
            found = {code: d for code, d in sorted(self.registry.params_for(resource_type).items())
                     if code in indexed or code in COLUMN_PARAMS}
            self._searchable[resource_type] = found
        return found

    def _compile_type(self, resource_type: str) -> tuple[_ParamPlan, ...]:
        out = []
        for code, d in sorted(self.registry.params_for(resource_type).items()):
            if code in COLUMN_PARAMS:
                continue
            if d.url in self.registry.unsupported:
                self.unsupported[(resource_type, code)] = self.registry.unsupported[d.url]
                continue
            try:
                plan = self._compile_param(resource_type, d)
            except (CompileError, ValueError) as exc:
                self.unsupported[(resource_type, code)] = f"expression not indexable: {exc}"
                continue
            if plan is None:
                self.unsupported[(resource_type, code)] = (
                    f"expression {d.expression!r} selects no element of a type a {d.type} parameter can index"
                )
                continue
            out.append(plan)
        return tuple(out)

    def _compile_param(self, resource_type: str, d: SearchParamDef) -> _ParamPlan | None:
        assert d.expression is not None
        ast = parse(d.expression)
        if d.type == "composite":
            return self._compile_composite(resource_type, d, ast)
        convert = CONVERTERS[d.type]
        try:
            compiled = compile_expression(ast, resource_type)
        except CompileError:
            self.fallback_params.add((resource_type, d.code))
            return _ParamPlan(d.code, convert, (), fallback=compile_fallback(d.expression))
        paths = tuple(_path(p) for p in compiled if p.leaf_type in ACCEPTED[d.type])
        return _ParamPlan(d.code, convert, paths) if paths else None

    def component_types(self, resource_type: str, code: str) -> tuple[str, ...]:
        """The parameter type of each component of a composite parameter, as indexed."""
        for plan in self.plans(resource_type):
            if plan.code == code and plan.components:
                return tuple(c.type for c in plan.components[0][1])
        return ()

    def _compile_composite(self, resource_type: str, d: SearchParamDef, ast: Any) -> _ParamPlan | None:
        parts: list[tuple[_Path, tuple[_Component, ...]]] = []
        for base in compile_expression(ast, resource_type):
            comps = []
            for n, comp in enumerate(d.components):
                comp_def = self.registry.by_url.get(comp.definition)
                if comp_def is None or comp_def.type not in CONVERTERS:
                    raise CompileError(f"component {comp.definition} is not a known indexable parameter")
                rel = compile_relative(parse(comp.expression), resource_type, base.leaf_type, base.node)
                kind = _component_type(comp_def.type, [p.leaf_type for p in rel])
                paths = tuple(_path(p) for p in rel if p.leaf_type in ACCEPTED[kind])
                if not paths:
                    break
                comps.append(_Component(f"{d.code}${n}", kind, CONVERTERS[kind], paths))
            else:
                parts.append((_path(base), tuple(comps)))
        if not parts or not d.components:
            return None
        return _ParamPlan(d.code, CONVERTERS["token"], (), components=tuple(parts))

    def extract(self, resource: dict[str, Any]) -> IndexRows:
        """The index rows of one resource (FHIR R4 search §3.1.1: values of every parameter), by the type's
        compiled extractor (``extractors.py``)."""
        resource_type = resource["resourceType"]
        extractor = self._extractors.get(resource_type)
        if extractor is None:
            extractor = self._extractors[resource_type] = compile_extractor(resource_type, self.plans(resource_type))
        sink = RowSink()
        extractor(resource, sink)
        return _rows(resource_type, resource, sink)

    def extract_generic(self, resource: dict[str, Any]) -> IndexRows:
        """``extract`` by interpreting the plans (the reference the compiled extractors are tested against)."""
        resource_type = resource["resourceType"]
        return _rows(resource_type, resource, _fill(self.plans(resource_type), resource))

    def dates(self, resource: dict[str, Any], codes: frozenset[str]) -> tuple[tuple[str, int, int, int], ...]:
        """The date rows of only the (non-composite) parameters ``codes`` — the rows ``extract`` gives for
        them, in the same order — without extracting the others (the policy's clinical date of a resource)."""
        key = (resource["resourceType"], codes)
        plans = self._subsets.get(key)
        if plans is None:
            plans = self._subsets[key] = tuple(p for p in self.plans(key[0])
                                                   if p.code in codes and not p.components)
        return tuple(dict.fromkeys(_fill(plans, resource).dates)) if plans else ()


def _rows(resource_type: str, resource: dict[str, Any], sink: RowSink) -> IndexRows:
    references = tuple(dict.fromkeys(sink.references))
    return IndexRows(
        tokens=tuple(dict.fromkeys(sink.tokens)),
        strings=tuple(dict.fromkeys(sink.strings)),
        dates=tuple(dict.fromkeys(sink.dates)),
        numbers=tuple(dict.fromkeys(sink.numbers)),
        quantities=tuple(dict.fromkeys(sink.quantities)),
        references=references,
        uris=tuple(dict.fromkeys(sink.uris)),
        compartments=_compartments(resource_type, resource.get("id"), references),
    )


def _fill(plans: tuple[_ParamPlan, ...], resource: dict[str, Any]) -> RowSink:
    sink = RowSink()
    grp = 0
    for plan in plans:
        if plan.components:
            grp = _extract_composite(plan, resource, sink, grp)
        elif plan.fallback is not None:
            for value in plan.fallback(resource):
                plan.convert(sink, plan.code, 0, value, "unknown", None)
        else:
            for path in plan.paths:
                if path.first_key is not None and path.first_key not in resource:
                    continue
                for value in walk(path.ops, resource, resource):
                    plan.convert(sink, plan.code, 0, value, path.leaf, path.valueset)
    return sink


def _component_type(declared: str, leaves: list[str]) -> str:
    """The declared type of a composite component, unless its expression cannot yield that type.

    R4 erratum: DocumentReference-relationship pairs the component ``code`` with the reference parameter
    DocumentReference-relatesto and ``target`` with the token DocumentReference-relation (swapped). The
    type the expression actually yields is used instead (docs/search.md, errata)."""
    if any(leaf in ACCEPTED[declared] for leaf in leaves):
        return declared
    for kind in ("token", "reference", "quantity", "date", "string", "number", "uri"):
        if leaves and all(leaf in ACCEPTED[kind] for leaf in leaves):
            return kind
    return declared


def _extract_composite(plan: _ParamPlan, resource: dict[str, Any], sink: RowSink, grp: int) -> int:
    for base, comps in plan.components:
        if base.first_key is not None and base.first_key not in resource:
            continue
        for item in walk(base.ops, resource, resource):
            part = RowSink()
            complete = True
            for comp in comps:
                produced = False
                for path in comp.paths:
                    for value in walk(path.ops, item, resource):
                        produced = comp.convert(part, comp.code, grp + 1, value, path.leaf, path.valueset) or produced
                if not produced:
                    complete = False
                    break
            if complete:
                grp += 1
                for name in RowSink.__slots__:
                    getattr(sink, name).extend(getattr(part, name))
    return grp


def _compartments(resource_type: str, resource_id: Any, references: tuple[Any, ...]) -> tuple[tuple[str, str], ...]:
    out: dict[tuple[str, str], None] = {}
    for comp_type, params in _membership(resource_type):
        if comp_type == resource_type and isinstance(resource_id, str):
            out[(comp_type, resource_id)] = None
        for param, grp, ref_type, ref_id, _version, _url in references:
            if grp == 0 and ref_type == comp_type and ref_id is not None and param in params:
                out[(comp_type, ref_id)] = None
    return tuple(out)


@cache
def _membership(resource_type: str) -> tuple[tuple[str, frozenset[str]], ...]:
    """``membership_params`` of a type, read once (it walks every compartment definition)."""
    params = get_compartments().membership_params(resource_type)
    return tuple((comp, frozenset(codes)) for comp, codes in params.items())


@cache
def get_indexer() -> Indexer:
    """The process-wide indexer over ``get_registry()``."""
    return Indexer()
