"""Index extraction compiled to Python, one function per resource type (the ingest hot path).

``Indexer`` compiles each search parameter once into JSON paths (``fhirpath.compiler``); executing those
paths through the generic walker (``fhirpath.walker.walk``: a loop over op codes building a list per step)
for every parameter of every resource was most of the extraction time. Here a resource type's parameters
become the source of ONE function of nested loops and dict look-ups, generated once and compiled with
``compile``: the same key look-ups, filters and converter calls in the same order, so it yields exactly
the rows the generic path yields (``tests/search/test_extractors.py`` checks that on the R4 examples,
Synthea and random resources of every type).

What is compiled: paths whose first step is a key of the resource, followed by keys, ``where(...)``
filters and ``resolve() is T`` filters — every path of the R4 and KZ parameters but one — and composite
parameters. Anything else (a boolean expression, the full FHIRPath engine's fallback) is called as the
generic path calls it. The generated source names no value from a resource: keys and codes are literals
from the parameter definitions (``repr``), filters and converters are passed in by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fhir_server.search.converters import RowSink
from fhir_server.search.fhirpath.compiler import GET, REFTYPE, WHERE, Op, reference_type
from fhir_server.search.fhirpath.walker import walk

if TYPE_CHECKING:
    from fhir_server.search.indexer import _ParamPlan, _Path

Extractor = Callable[[dict[str, Any], RowSink], int]


class _Source:
    """The lines of one generated function and the objects its names refer to."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {"RowSink": RowSink, "walk": walk, "reference_type": reference_type}
        self._by_id: dict[int, str] = {}
        self._count = 0

    def name(self, value: Any, prefix: str) -> str:
        """A global name of the generated function bound to ``value`` (one per distinct object)."""
        found = self._by_id.get(id(value))
        if found is None:
            found = self._by_id[id(value)] = f"{prefix}{len(self._by_id)}"
            self.names[found] = value
        return found

    def var(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}{self._count}"

    def add(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)


def compilable(ops: tuple[Op, ...]) -> bool:
    """Paths of key steps and per-item filters, starting with a key (what ``_loops`` generates)."""
    return bool(ops) and ops[0][0] == GET and all(kind in (GET, WHERE, REFTYPE) for kind, _ in ops)


def _loops(src: _Source, ops: tuple[Op, ...], var: str, depth: int, is_dict: bool,
           body: Callable[[str, int], None]) -> None:
    """Nested loops selecting what ``walk(ops, var, resource)`` selects, in the same order; ``body`` is
    generated for each selected value. A key step keeps dict items only, flattens arrays and drops nulls
    (FHIRPath's member navigation over JSON, as the walker does); a filter keeps the items it accepts."""
    if not ops:
        body(var, depth)
        return
    kind, arg = ops[0]
    if kind == GET:
        if not is_dict:
            src.add(depth, f"if type({var}) is dict:")
            depth += 1
        value, item = src.var("v"), src.var("x")
        src.add(depth, f"{value} = {var}.get({arg!r})")
        src.add(depth, f"if {value} is not None:")
        src.add(depth + 1, f"for {item} in ({value} if type({value}) is list else ({value},)):")
        src.add(depth + 2, f"if {item} is not None:")
        _loops(src, ops[1:], item, depth + 3, False, body)
    elif kind == WHERE:
        src.add(depth, f"if {src.name(arg, 'W')}({var}, resource):")
        _loops(src, ops[1:], var, depth + 1, is_dict, body)
    elif kind == REFTYPE:
        src.add(depth, f"if reference_type({var}, resource) in {src.name(arg, 'T')}:")
        _loops(src, ops[1:], var, depth + 1, is_dict, body)
    else:  # pragma: no cover - compilable() admits no other step
        raise ValueError(f"step {kind} is not compiled")


def _path(src: _Source, path: _Path, start: str, depth: int, is_dict: bool,
          body: Callable[[str, int], None]) -> None:
    """One path from ``start`` (the resource, or a composite's base item)."""
    if compilable(path.ops):
        _loops(src, path.ops, start, depth, is_dict, body)
        return
    ops = src.name(path.ops, "O")
    if is_dict and path.first_key is not None:  # as the generic path: a resource without the key has nothing
        src.add(depth, f"if {path.first_key!r} in {start}:")
        depth += 1
    value = src.var("w")
    src.add(depth, f"for {value} in walk({ops}, {start}, resource):")
    body(value, depth + 1)


def _call(src: _Source, convert: Any, sink: str, code: str, grp: str, path: _Path) -> Callable[[str, int], str]:
    fn = src.name(convert, "C")
    return lambda value, _depth: f"{fn}({sink}, {code!r}, {grp}, {value}, {path.leaf!r}, {path.valueset!r})"


def _simple(src: _Source, plan: _ParamPlan) -> None:
    for path in plan.paths:
        call = _call(src, plan.convert, "sink", plan.code, "0", path)

        def convert(value: str, depth: int, call: Callable[[str, int], str] = call) -> None:
            src.add(depth, call(value, depth))

        _path(src, path, "resource", 1, True, convert)


def _composite(src: _Source, plan: _ParamPlan) -> None:
    """As ``indexer._extract_composite``: a base value counts (gets the next group number) when every
    component produced a row for it; its rows are collected apart and added only then."""
    for base, comps in plan.components:

        def item_body(item: str, depth: int, comps: Any = comps) -> None:
            part, group, produced = src.var("part"), src.var("g"), src.var("made")
            src.add(depth, f"{part} = RowSink()")
            src.add(depth, f"{group} = grp + 1")
            for comp in comps:
                src.add(depth, f"{produced} = False")
                for path in comp.paths:
                    call = _call(src, comp.convert, part, comp.code, group, path)

                    def produce(value: str, d: int, call: Any = call) -> None:
                        src.add(d, f"{produced} = {call(value, d)} or {produced}")

                    _path(src, path, item, depth, False, produce)
                src.add(depth, f"if {produced}:")
                depth += 1
            src.add(depth, f"grp = {group}")
            for name in RowSink.__slots__:
                src.add(depth, f"if {part}.{name}:")
                src.add(depth + 1, f"sink.{name}.extend({part}.{name})")

        _path(src, base, "resource", 1, True, item_body)


def compile_extractor(resource_type: str, plans: tuple[_ParamPlan, ...]) -> Extractor:
    """One function ``(resource, sink) -> last composite group number`` filling ``sink`` with the rows of
    every plan, in plan order (what ``indexer._fill`` does by interpreting the plans)."""
    src = _Source()
    src.add(0, "def extract(resource, sink):")
    src.add(1, "grp = 0")
    for plan in plans:
        if plan.components:
            _composite(src, plan)
        elif plan.fallback is not None:
            fallback, convert = src.name(plan.fallback, "F"), src.name(plan.convert, "C")
            src.add(1, f"for value in {fallback}(resource):")
            src.add(2, f"{convert}(sink, {plan.code!r}, 0, value, 'unknown', None)")
        else:
            _simple(src, plan)
    src.add(1, "return grp")
    namespace = dict(src.names)
    code = compile("\n".join(src.lines) + "\n", f"<index extractor of {resource_type}>", "exec")
    exec(code, namespace)  # the source was generated above from the parameter definitions only
    extractor: Extractor = namespace["extract"]
    return extractor
