"""Base structural validation of resources against the R4 StructureDefinitions (issue 2 §5).

Checks, for every object in the resource tree: unknown properties, cardinality (min, and array vs
single value per max), primitive formats, choice types (one member at most), ``resourceType``,
id rules, contained and nested resources, and codes of required bindings where the value set is
enumerable from the core package. Invariants, slicing and profiles are the profile validator's job
(``validation/profile``), which runs after this one and adds its issues to the same list.
"""

from __future__ import annotations

from typing import Any

from fhir_server.definitions import Definitions, Field, get_definitions, required_codes
from fhir_server.validation.issues import Issue
from fhir_server.validation.primitives import Check, build_checks, json_kind

MAX_DEPTH = 64


class StructureValidator:
    """Walks a JSON resource once; every problem becomes an :class:`Issue` with a FHIRPath expression."""

    def __init__(self, definitions: Definitions | None = None) -> None:
        self.defs = definitions or get_definitions()
        self.nodes = self.defs.nodes
        self.checks: dict[str, Check] = build_checks(self.defs.regexes)
        # per node key: the JSON names of all its choice groups' members
        self._choice_names: dict[str, frozenset[str]] = {}
        # per node key: (element path, its JSON names and their ``_name`` twins) of each required element
        self._required: dict[str, list[tuple[str, frozenset[str]]]] = {}

    def validate(self, resource: Any) -> list[Issue]:
        issues: list[Issue] = []
        if not isinstance(resource, dict):
            issues.append(Issue("error", "structure", f"a resource must be a JSON object, not {json_kind(resource)}"))
            return issues
        self._resource(resource, None, issues, 0)
        return issues

    # -- resources ---------------------------------------------------------------------------------
    def _resource(self, res: dict[str, Any], path: str | None, issues: list[Issue], depth: int) -> None:
        rtype = res.get("resourceType")
        if not isinstance(rtype, str) or not self.defs.is_resource_type(rtype):
            where = path or "resourceType"
            msg = "missing resourceType" if rtype is None else f"unknown resourceType {rtype!r}"
            issues.append(Issue("error", "structure", msg, where))
            return
        rid = res.get("id")
        if rid is not None:
            problem = self.checks["id"](rid)
            if problem:
                issues.append(Issue("error", "value", f"invalid id: {problem}", f"{path or rtype}.id"))
        self._object(res, rtype, path or rtype, issues, depth, is_resource=True)

    # -- objects -----------------------------------------------------------------------------------
    def _object(
        self, obj: dict[str, Any], key: str, path: str, issues: list[Issue], depth: int, is_resource: bool = False
    ) -> None:
        if depth > MAX_DEPTH:
            issues.append(Issue("error", "too-costly", "resource nesting is too deep", path))
            return
        node = self.nodes.get(key)
        if node is None:
            issues.append(Issue("error", "not-supported", f"no definition for type {key}", path))
            return
        if not obj or (is_resource and len(obj) == 1):
            issues.append(Issue("error", "structure", "an object must have content (FHIR json.html)", path))
        fields = node.fields
        checks = self.checks
        for name, value in obj.items():
            if name[0] == "_":
                self._primitive_element(obj, name, value, fields, path, issues, depth)
                continue
            f = fields.get(name)
            if f is None:
                if not (is_resource and name == "resourceType"):
                    issues.append(Issue("error", "structure", f"unknown element '{name}'", f"{path}.{name}"))
                continue
            if f.primitive and not f.is_array and value is not None and not isinstance(value, list):
                # one primitive value, the most common member: what _field and _value do with it, inline
                problem = checks[f.type_code](value)
                if problem:
                    issues.append(Issue("error", "value", problem, f"{path}.{name}"))
                elif f.required_valueset and f.type_code == "code":
                    self._check_code(f.required_valueset, None, value, f"{path}.{name}", issues)
                continue
            self._field(obj, f, value, path, name, issues, depth)
        required = self._required.get(node.key)
        if required is None:  # each required element's JSON names, with their ``_name`` twins
            required = self._required[node.key] = [
                (el_path, frozenset(node.required_names[el_path]) | {"_" + n for n in node.required_names[el_path]})
                for el_path in node.required]
        for el_path, keys in required:
            if obj.keys().isdisjoint(keys):  # none of its names (or their twins) given
                shown = el_path.rsplit(".", 1)[1]
                issues.append(Issue("error", "required", f"missing required element '{shown}' (min 1)",
                                    f"{path}.{shown.replace('[x]', '')}"))
        if node.choice_groups:
            every = self._choice_names.get(node.key)
            if every is None:
                every = self._choice_names[node.key] = frozenset(n for names in node.choice_groups.values()
                                                                 for n in names)
            if len(every.intersection(obj)) > 1:  # else no group can have two members given
                for group, names in node.choice_groups.items():
                    present = [n for n in names if n in obj]
                    if len(present) > 1:
                        issues.append(Issue("error", "structure",
                                            f"only one of {', '.join(present)} may be given for {group}", path))

    def _field(self, obj: dict[str, Any], f: Field, value: Any, parent: str, name: str, issues: list[Issue],
               depth: int) -> None:
        """``parent.name``: the element's path is only written out where it is needed (an issue, an object to
        descend into), not for each of the many primitives that are fine."""
        if f.is_array:
            if not isinstance(value, list):
                issues.append(Issue("error", "structure", f"'{f.name}' must be an array (max > 1)", f"{parent}.{name}"))
                return
            if not value:
                issues.append(Issue("error", "structure", "an array must not be empty (FHIR json.html)",
                                    f"{parent}.{name}"))
                return
            shadow = obj.get("_" + f.name) if f.primitive else None
            for i, item in enumerate(value):
                if item is None and f.primitive and isinstance(shadow, list) and i < len(shadow) and shadow[i]:
                    continue  # value absent, only id/extension given in the _name array
                self._value(f, item, parent, name, i, issues, depth)
            return
        if isinstance(value, list):
            issues.append(Issue("error", "structure", f"'{f.name}' must be a single value, not an array (max 1)",
                                f"{parent}.{name}"))
            return
        self._value(f, value, parent, name, None, issues, depth)

    def _value(self, f: Field, value: Any, parent: str, name: str, index: int | None, issues: list[Issue],
               depth: int) -> None:
        if f.primitive and value is not None:
            problem = self.checks[f.type_code](value)
            if problem:
                issues.append(Issue("error", "value", problem, _at(parent, name, index)))
            elif f.required_valueset and f.type_code == "code":
                self._check_code(f.required_valueset, None, value, _at(parent, name, index), issues)
            return
        path = _at(parent, name, index)
        if value is None:
            issues.append(Issue("error", "structure", "null is not allowed here (FHIR json.html)", path))
            return
        if not isinstance(value, dict):
            kind = json_kind(value)
            issues.append(Issue("error", "structure", f"'{f.name}' must be a JSON object, not {kind}", path))
            return
        if f.type_code == "Resource":
            self._resource(value, path, issues, depth + 1)
            return
        self._object(value, f.node or f.type_code, path, issues, depth + 1)
        if f.required_valueset:
            self._check_coded(f, value, path, issues)

    def _primitive_element(
        self, obj: dict[str, Any], name: str, value: Any, fields: dict[str, Field], path: str,
        issues: list[Issue], depth: int,
    ) -> None:
        """``_name`` carries id/extension of primitive ``name`` (FHIR json.html §2.6.2.2)."""
        f = fields.get(name[1:])
        here = f"{path}.{name}"
        if f is None or not f.primitive:
            issues.append(Issue("error", "structure", f"unknown element '{name}'", here))
            return
        items = value if isinstance(value, list) else [value]
        if f.is_array != isinstance(value, list):
            issues.append(Issue("error", "structure", f"'{name}' must match the shape of '{name[1:]}'", here))
            return
        base = obj.get(name[1:])
        if f.is_array and base is not None and (not isinstance(base, list) or len(base) != len(items)):
            issues.append(Issue("error", "structure", f"'{name}' must have as many items as '{name[1:]}'", here))
        for i, item in enumerate(items):
            if item is None and f.is_array:
                continue
            sub = f"{here}[{i}]" if f.is_array else here
            if not isinstance(item, dict):
                issues.append(Issue("error", "structure", "primitive extensions must be a JSON object", sub))
                continue
            self._object(item, "Element", sub, issues, depth + 1)

    # -- required bindings -------------------------------------------------------------------------
    def _check_code(self, vs: str, system: str | None, code: str, path: str, issues: list[Issue]) -> None:
        known = required_codes(vs)
        if known is None:
            return
        codes, pairs = known
        ok = (system, code) in pairs if system is not None else code in codes
        if not ok:
            issues.append(Issue("error", "code-invalid",
                                f"code {code!r} is not in the required value set {vs}", path))

    def _check_coded(self, f: Field, value: dict[str, Any], path: str, issues: list[Issue]) -> None:
        vs = f.required_valueset
        assert vs is not None
        known = required_codes(vs)
        if known is None:
            return
        pairs = known[1]
        if f.type_code == "Coding":
            if "code" in value and "system" in value:
                self._check_code(vs, value["system"], value["code"], f"{path}.code", issues)
            return
        if f.type_code == "CodeableConcept":
            codings = [c for c in value.get("coding", []) if isinstance(c, dict)]
            if not any((c.get("system"), c.get("code")) in pairs for c in codings):
                issues.append(Issue("error", "code-invalid",
                                    f"no coding from the required value set {vs}", path))


def _at(parent: str, name: str, index: int | None) -> str:
    return f"{parent}.{name}" if index is None else f"{parent}.{name}[{index}]"


_default: StructureValidator | None = None


def get_structure_validator() -> StructureValidator:
    global _default
    if _default is None:
        _default = StructureValidator()
    return _default
