"""Compile search expressions into typed JSON paths, once per resource type.

A search expression such as ``Observation.value as Quantity`` or
``Observation.subject.where(resolve() is Patient)`` becomes a list of :class:`CompiledPath`: plain
key look-ups and filters over the JSON, each ending in a known FHIR type, so that indexing needs no
interpretation at write time. Types come from the R4 StructureDefinitions (``fhir_server.definitions``),
which is how choice elements (``value[x]`` → ``valueQuantity`` ...) are resolved (FHIR R4 §2.6.2.3).

Deliberate errata handling (``known-errata-medplum-patches.json``): the R4 expressions use ``X as T``
where ``X.ofType(T)`` is meant (``as`` on a collection is an error in FHIRPath N1). Here ``as``,
``as()`` and ``ofType()`` all *filter by type*, and type names compare case-insensitively for
primitives (R4 writes ``value.as(DateTime)`` for ``dateTime``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from fhir_server.definitions import Field, get_definitions
from fhir_server.search.fhirpath.parser import (
    Binary,
    Call,
    Env,
    Ident,
    Index,
    Literal,
    Member,
    Node,
    TypeOp,
)

Predicate = Callable[[Any, dict[str, Any]], bool]
# Path operations, executed by ``walker.walk``.
GET, WHERE, INDEX, ROOT, REFTYPE, BOOL = range(6)
Op = tuple[int, Any]

# Quantity profiles that have no node of their own in the definitions (derivation = constraint).
_QUANTITY_ALIASES = frozenset({"Age", "Duration", "Distance", "Count", "SimpleQuantity", "MoneyQuantity"})
_ABSTRACT_ROOTS = frozenset({"Resource", "DomainResource"})


class CompileError(ValueError):
    """The expression uses FHIRPath outside the compiled subset; the full engine is used instead."""


@dataclass(frozen=True, slots=True)
class CompiledPath:
    ops: tuple[Op, ...]
    leaf_type: str  # FHIR type code of the values this path yields
    node: str | None  # definitions node key of the leaf, None for primitives
    valueset: str | None = None  # required binding of a coded leaf (gives the implicit token system)


@dataclass(frozen=True, slots=True)
class _Ctx:
    type_code: str
    node: str | None


@cache
def _members(node_key: str) -> dict[str, tuple[Field, ...]]:
    """FHIRPath member name -> JSON fields of a node (a choice name maps to all its variants)."""
    node = get_definitions().nodes.get(node_key)
    out: dict[str, list[Field]] = {}
    if node is None:
        return {}
    for f in node.fields.values():
        fp_name = f.path.rsplit(".", 1)[1].removesuffix("[x]")
        out.setdefault(fp_name, []).append(f)
    return {k: tuple(v) for k, v in out.items()}


def _node_of(type_code: str, node: str | None) -> str | None:
    if type_code in _QUANTITY_ALIASES:
        return "Quantity"
    return node


def _type_matches(leaf: str, wanted: str) -> bool:
    if leaf == wanted or leaf.lower() == wanted.lower():
        return True
    return wanted == "Quantity" and leaf in _QUANTITY_ALIASES


class _Compiler:
    def __init__(self, resource_type: str) -> None:
        self.resource_type = resource_type
        self.root = _Ctx(resource_type, resource_type)

    # -- path expressions -------------------------------------------------------------------
    def paths(self, node: Node, ctx: _Ctx) -> list[CompiledPath]:
        if isinstance(node, Binary) and node.op == "|":
            return self.paths(node.left, ctx) + self.paths(node.right, ctx)
        if isinstance(node, Ident):
            return self._ident(node.name, ctx)
        if isinstance(node, Env) and node.name in ("resource", "rootResource"):
            return [CompiledPath(((ROOT, None),), self.resource_type, self.resource_type)]
        if isinstance(node, Member):
            return [p2 for p in self.paths(node.target, ctx) for p2 in self._member(p, node.name)]
        if isinstance(node, TypeOp) and node.op == "as":
            return self._of_type(self.paths(node.target, ctx), node.type_name)
        if isinstance(node, Index):
            return [_extend(p, (INDEX, node.index)) for p in self.paths(node.target, ctx)]
        if isinstance(node, Call) and node.target is not None:
            return self._call(node, self.paths(node.target, ctx))
        raise CompileError(f"unsupported expression node {type(node).__name__}")

    def _ident(self, name: str, ctx: _Ctx) -> list[CompiledPath]:
        if name[:1].isupper() and ctx == self.root:
            if name == self.resource_type or name in _ABSTRACT_ROOTS:
                return [CompiledPath((), ctx.type_code, ctx.node)]
            if name in get_definitions().resource_types:
                return []  # a branch for another resource type of a multi-base parameter
        if name == "$this":
            return [CompiledPath((), ctx.type_code, ctx.node)]
        return self._member(CompiledPath((), ctx.type_code, ctx.node), name)

    def _member(self, path: CompiledPath, name: str) -> list[CompiledPath]:
        node_key = _node_of(path.leaf_type, path.node)
        if node_key is None:
            raise CompileError(f"member {name!r} of primitive {path.leaf_type}")
        fields = _members(node_key).get(name)
        if not fields:
            raise CompileError(f"{node_key} has no element {name!r}")
        return [
            CompiledPath((*path.ops, (GET, f.name)), f.type_code, _node_of(f.type_code, f.node), f.required_valueset)
            for f in fields
        ]

    def _of_type(self, paths: list[CompiledPath], type_name: str) -> list[CompiledPath]:
        if any(p.leaf_type == "Resource" for p in paths):
            raise CompileError("type filter over contained resources")
        return [p for p in paths if _type_matches(p.leaf_type, type_name)]

    def _call(self, call: Call, paths: list[CompiledPath]) -> list[CompiledPath]:
        if call.name in ("as", "ofType") and len(call.args) == 1 and isinstance(call.args[0], Ident):
            return self._of_type(paths, call.args[0].name)
        if call.name == "where" and len(call.args) == 1:
            out = []
            for p in paths:
                pred = self.predicate(call.args[0], _Ctx(p.leaf_type, p.node))
                out.append(_extend(p, pred if isinstance(pred, tuple) else (WHERE, pred)))
            return out
        if call.name == "first" and not call.args:
            return [_extend(p, (INDEX, 0)) for p in paths]
        if call.name == "extension" and len(call.args) == 1 and isinstance(call.args[0], Literal):
            url = call.args[0].value
            exts = [p2 for p in paths for p2 in self._member(p, "extension")]
            return [_extend(p, (WHERE, _field_equals("url", url))) for p in exts]
        raise CompileError(f"unsupported function {call.name}()")

    # -- predicates (inside where(), or a whole boolean expression) ------------------------
    def predicate(self, node: Node, ctx: _Ctx) -> Predicate | Op:
        """A Python predicate over one item, or a ``(REFTYPE, types)`` op for ``resolve() is T``."""
        if isinstance(node, TypeOp) and node.op == "is":
            target = node.target
            if isinstance(target, Call) and target.name == "resolve" and target.target is None:
                return (REFTYPE, frozenset({node.type_name}))
            typed = self._of_type(self.paths(target, ctx), node.type_name)
            return _exists(typed)
        if isinstance(node, Binary) and node.op in ("and", "or"):
            left, right = self._pred_fn(node.left, ctx), self._pred_fn(node.right, ctx)
            if node.op == "and":
                return lambda item, root: left(item, root) and right(item, root)
            return lambda item, root: left(item, root) or right(item, root)
        if isinstance(node, Binary) and node.op in ("=", "!="):
            return self._comparison(node, ctx)
        if isinstance(node, Call) and node.target is not None and not node.args:
            inner = self.paths(node.target, ctx)
            if node.name == "exists":
                return _exists(inner)
            if node.name == "empty":
                exists = _exists(inner)
                return lambda item, root: not exists(item, root)
            if node.name == "not":
                positive = self._pred_fn(node.target, ctx)
                return lambda item, root: not positive(item, root)
        if isinstance(node, Literal) and isinstance(node.value, bool):
            constant = node.value
            return lambda item, root: constant
        raise CompileError(f"unsupported predicate {type(node).__name__}")

    def _pred_fn(self, node: Node, ctx: _Ctx) -> Predicate:
        pred = self.predicate(node, ctx)
        if isinstance(pred, tuple):
            types = pred[1]
            return lambda item, root: reference_type(item, root) in types
        return pred

    def _comparison(self, node: Binary, ctx: _Ctx) -> Predicate:
        path_node, lit = (node.left, node.right) if isinstance(node.right, Literal) else (node.right, node.left)
        if not isinstance(lit, Literal):
            raise CompileError("comparison without a literal")
        paths = self.paths(path_node, ctx)
        value = lit.value
        if node.op == "=":
            return lambda item, root: any(v == value for v in _values(paths, item, root))
        # FHIRPath: an empty operand gives an empty result, which where() treats as false.
        return lambda item, root: any(v != value for v in _values(paths, item, root))


def _extend(path: CompiledPath, op: Op) -> CompiledPath:
    return CompiledPath((*path.ops, op), path.leaf_type, path.node, path.valueset)


def _field_equals(key: str, value: Any) -> Predicate:
    return lambda item, root: isinstance(item, dict) and item.get(key) == value


def _values(paths: list[CompiledPath], item: Any, root: dict[str, Any]) -> list[Any]:
    from fhir_server.search.fhirpath.walker import walk

    out: list[Any] = []
    for p in paths:
        out.extend(walk(p.ops, item, root))
    return out


def _exists(paths: list[CompiledPath]) -> Predicate:
    return lambda item, root: bool(_values(paths, item, root))


def reference_type(item: Any, root: dict[str, Any]) -> str | None:
    """The resource type a Reference points to, as ``resolve() is T`` needs it (no database access:
    the type is read from the literal reference, or from the contained resource for ``#id``)."""
    if not isinstance(item, dict):
        return None
    ref = item.get("reference")
    if not isinstance(ref, str):
        return item.get("type") if isinstance(item.get("type"), str) else None
    if ref.startswith("#"):
        for contained in root.get("contained", ()):
            if isinstance(contained, dict) and contained.get("id") == ref[1:]:
                return contained.get("resourceType")
        return None
    parts = ref.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    return parts[-2] if len(parts) >= 2 else None


def compile_expression(node: Node, resource_type: str) -> list[CompiledPath]:
    """Compile a parsed search expression for one resource type.

    A top-level boolean expression (``Patient.deceased.exists() and Patient.deceased != false``)
    becomes one path yielding a single ``boolean``.
    """
    compiler = _Compiler(resource_type)
    if _is_boolean(node):
        pred = compiler._pred_fn(node, compiler.root)
        return [CompiledPath(((BOOL, pred),), "boolean", None)]
    return compiler.paths(node, compiler.root)


def compile_relative(node: Node, resource_type: str, type_code: str, node_key: str | None) -> list[CompiledPath]:
    """Compile a composite component expression relative to the base element's type."""
    compiler = _Compiler(resource_type)
    return compiler.paths(node, _Ctx(type_code, _node_of(type_code, node_key)))


def _is_boolean(node: Node) -> bool:
    if isinstance(node, Binary):
        return node.op in ("and", "or", "=", "!=", "implies", "xor")
    if isinstance(node, TypeOp):
        return node.op == "is"
    return isinstance(node, Call) and node.name in ("exists", "empty", "not")
