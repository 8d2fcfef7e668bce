"""The validation walk: an instance against a compiled profile, element by element.

For each element: cardinality and slicing (at the parent), fixed/pattern, binding, reference targets,
invariants; then its children — from the profile when the snapshot has them, otherwise from the data
type's own definition. Extensions are validated against their definitions, contained and Bundle entry
resources against their own type. ``invariants_only`` keeps just the invariant evaluation (used for the
R4 core invariants, when the structural checks are the base validator's job); ``invariants=False`` leaves
the invariants out (writes of resources without a profile when the deployment does not enforce them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fhir_server.validation.issues import Issue, Severity
from fhir_server.validation.profile import checks
from fhir_server.validation.profile.fhirpath import EvaluationError, evaluate_with_engine
from fhir_server.validation.profile.model import CompiledProfile, Constraint, ElementRule, TypeRule
from fhir_server.validation.profile.natives import NATIVES, Env, Native
from fhir_server.validation.profile.registry import CORE_PREFIX, ProfileRegistry
from fhir_server.validation.profile.slicing import Item, assign_slices

__all__ = ["Walk", "unknown_extension_severity"]

_STRUCTURAL = ("BackboneElement", "Element")
_ANY_CONTEXT = frozenset({"Element", "Resource", "DomainResource", "Base"})
# Extensions without a definition cannot be validated and are errors (as the HL7 reference validator
# judges them), except in the domains reserved for examples, which it accepts with a warning.
_EXAMPLE_DOMAINS = ("example.org", "example.com", "acme.com", "nema.org")


def unknown_extension_severity(url: object, modifier: bool) -> Severity:
    """error for an extension nobody defined; warning for example domains (never for a modifier)."""
    if not modifier and isinstance(url, str) and any(domain in url for domain in _EXAMPLE_DOMAINS):
        return "warning"
    return "error"


# One child entry to visit for an object of a given shape: the rule, its choice keys, its ``_name`` key, and
# how: a trivial primitive (``Walk._trivial``) present without its ``_name`` (_SCALAR), another element present
# without its ``_name`` and not sliced (_OBJECT: one object is visited directly), or through ``Walk._child``.
# The last three: the type code of its items, how ``_node`` treats that type (``Walk._kind``) and the type path
# ``_node`` gives ``_element``.
_Visit = tuple[ElementRule, list[tuple[str, str]] | None, str, int, str, int, str]
_GENERAL, _SCALAR, _OBJECT = 0, 1, 2
# Shapes remembered per child index, and in all (per registry): the common ones. The members of an object may come
# in any order, so a sender could make up many shapes; beyond the bounds (a few MB) they are simply not kept.
_SHAPES = 256
_SHAPES_IN_ALL = 20_000


@dataclass(slots=True)
class _ChildIndex:
    # rule, its choice (key, type) pairs (None when not a choice), its primitive-extension key ``_name``
    entries: list[tuple[ElementRule, list[tuple[str, str]] | None, str]]
    known: frozenset[str]
    required: frozenset[str]  # ids of children that must be checked even when absent
    # The fast path (``Walk._children``) goes from an object's keys to the entries instead of over every entry:
    # each JSON key an entry reads (``name``, ``_name``, each ``nameType`` and ``_nameType`` of a choice) ->
    # the entry's position; None when two entries read one key (then every entry is visited, as before).
    slots: dict[str, int] | None
    required_at: tuple[int, ...]  # positions of the ``required`` entries
    choices: tuple[tuple[int, str], ...]  # positions and JSON names of the choice entries (foreign types)
    # per position: the entry is a primitive whose every scalar occurrence is judged by its cardinality alone
    # (``Walk._trivial``); filled in on the first fast visit (it asks the registry)
    trivial: list[bool] | None = None
    # the visit list of each object shape met (``Walk._children``), at most ``_SHAPES`` of them
    shapes: dict[tuple[str, ...], list[_Visit]] = field(default_factory=dict)


def _suffix(code: str) -> str:
    return code[:1].upper() + code[1:]


def child_index(rule: ElementRule) -> _ChildIndex:
    if rule.index is None:
        entries: list[tuple[ElementRule, list[tuple[str, str]] | None, str]] = []
        known: set[str] = set()
        for name, child in rule.children.items():
            if child.is_choice:
                keys = [(name + _suffix(t.code), t.code) for t in child.types]
                entries.append((child, keys, "_" + name))
                known.update(k for k, _ in keys)
            else:
                entries.append((child, None, "_" + name))
                known.add(name)
        required = frozenset(
            c.id for c in rule.children.values() if c.min > 0 or any(s.min > 0 for s in c.slices)
        )
        slots: dict[str, int] | None = {}
        for position, (child, choice, twin) in enumerate(entries):
            reads = [twin, child.json_name] if choice is None else [k for key, _ in choice for k in (key, "_" + key)]
            for key in reads:
                if slots is not None and slots.setdefault(key, position) != position:
                    slots = None
        rule.index = _ChildIndex(
            entries, frozenset(known), required, slots,
            tuple(i for i, (child, _, _) in enumerate(entries) if child.id in required),
            tuple((i, child.json_name) for i, (child, choice, _) in enumerate(entries) if choice is not None))
    index: _ChildIndex = rule.index
    return index


_ELE_1 = ("ele-1", "hasValue() or (children().count() > id.count())")
# Natives that read %resource or %rootResource (the others see their focus only).
_READS_ENV = frozenset({"ref-1", "dom-3", "obs-7"})
# Data types whose subtrees the walk may remember (``Walk.memo``): common, repeated verbatim across the
# resources of a bulk load (codes, amounts, periods, names), and references-free unless an extension adds one.
MEMO_TYPES = frozenset({"Coding", "CodeableConcept", "Quantity", "Money", "Period", "Range", "Ratio", "HumanName",
                        "Address", "ContactPoint", "Identifier", "Dosage", "Timing", "Annotation", "Meta", "Narrative"})
MEMO_LIMIT = 50_000  # entries (tens of MB at most); the memo starts afresh beyond


def memo_key(value: Any) -> Any:
    """A hashable image of a JSON value that tells apart everything the walk could judge differently: member
    order, the JSON types (``true`` is not ``1``) and a decimal's exact text."""
    kind = type(value)
    if kind is dict:
        return tuple((k, memo_key(v)) for k, v in value.items())
    if kind is list:
        return (list, tuple(memo_key(v) for v in value))
    if kind is str or kind is int or kind is bool or value is None:
        return (kind, value)
    text = getattr(value, "text", None)  # jsonio.Decimal carries its literal
    return (kind, value if text is None else text)

# How ``_node`` treats an item, by its type code (kept in ``ProfileRegistry.derived``).
_RESOURCE, _EXTENSION, _MEMO, _ELEMENT = 1, 2, 3, 4
# Types ``_checks`` judges whatever the rule says.
_CHECKED_TYPES = frozenset({"Reference", "Attachment", "markdown"})
# Types whose values ``_node`` or ``_checks`` judge beyond cardinality and invariants, whatever their form.
_JUDGED_TYPES = frozenset({"Resource", "Extension", "Reference", "Attachment", "markdown"})


def _scalars(value: Any) -> int:
    """How many occurrences ``value`` (an object's member) gives when each is a scalar (not an object or an
    array): 0 for null, 1 for a scalar, the non-null members of an array of scalars; -1 otherwise."""
    if value is None:
        return 0
    if isinstance(value, list):
        count = 0
        for member in value:
            if isinstance(member, dict | list):
                return -1
            if member is not None:
                count += 1
        return count
    return -1 if isinstance(value, dict) else 1


# An invariant as the walk evaluates it: the constraint and its native (None: through fhirpathpy).
Step = tuple[Constraint, Native | None]


def _steps(constraints: Iterable[Constraint]) -> tuple[tuple[Step, ...], Constraint | None]:
    """The invariants with their natives looked up once, ``ele-1`` apart (it is on every element, and
    evaluated inline)."""
    steps: list[Step] = []
    ele_1: Constraint | None = None
    for c in constraints:
        if (c.key, c.expression) == _ELE_1 and ele_1 is None:
            ele_1 = c
        else:
            steps.append((c, NATIVES.get((c.key, c.expression))))
    return tuple(steps), ele_1


@dataclass(slots=True)
class _Plan:
    """What the walk needs of one rule on every visit, derived once (``plan_of``): its invariants with the
    natives resolved, whether it has fixed/pattern values, whether its children are described by the rule
    itself (a structural type) and, for a choice element, the chosen type's extra invariants per type."""

    steps: tuple[Step, ...]
    ele_1: Constraint | None
    fixed_or_pattern: bool
    structural: bool
    choice: bool
    by_type: dict[str, tuple[tuple[Step, ...], Constraint | None]] = field(default_factory=dict)
    # the resource types a Reference of the rule may point at (checks.allowed_types), once asked: (None,) any
    allowed: tuple[frozenset[str] | None] | None = None


def plan_of(rule: ElementRule) -> _Plan:
    plan: _Plan | None = rule.plan
    if plan is None:
        steps, ele_1 = _steps(rule.constraints)
        codes = rule.type_codes
        plan = rule.plan = _Plan(steps, ele_1, rule.fixed is not None or rule.pattern is not None,
                                 bool(codes) and codes[0] in _STRUCTURAL, len(rule.types) > 1)
    return plan


def _items(obj: dict[str, Any], key: str, type_code: str, expression: str) -> list[Item]:
    raw, ext = obj.get(key), obj.get("_" + key)
    if ext is None:  # no ``_name`` object (the common case): what the padding below gives, without it
        if raw is None:
            return []
        if isinstance(raw, list):
            return [Item(v, None, type_code, f"{expression}.{key}[{i}]") for i, v in enumerate(raw) if v is not None]
        return [Item(raw, None, type_code, f"{expression}.{key}")]
    if isinstance(raw, list) or isinstance(ext, list):
        values = raw if isinstance(raw, list) else []
        exts = ext if isinstance(ext, list) else []
        count = max(len(values), len(exts))
        values = values + [None] * (count - len(values))
        exts = exts + [None] * (count - len(exts))
        return [
            Item(v, e, type_code, f"{expression}.{key}[{i}]")
            for i, (v, e) in enumerate(zip(values, exts, strict=True))
            if v is not None or e is not None
        ]
    return [Item(raw, ext, type_code, f"{expression}.{key}")]


@dataclass(slots=True)
class Walk:
    registry: ProfileRegistry
    terminology: checks.Terminology | None = None
    relaxed_iin: bool = False
    invariants_only: bool = False
    invariants: bool = True
    issues: list[Issue] = field(default_factory=list)
    # (rule, type, value) of a MEMO_TYPES subtree -> its issues, expressions relative to the subtree; None: off.
    # Only valid while the profiles and the terminology stay the same: the ``$import`` workers give each job
    # a fresh one (a worker process lives for one job).
    memo: dict[Any, tuple[tuple[Issue, str], ...]] | None = None
    # Bumped by every judgement that read more than the subtree (a reference's target, %resource): a subtree
    # walked meanwhile is not remembered.
    _reads: int = 0
    # The shortcuts (``_children``): from an object's keys to its rules, primitives judged by their count. False
    # walks every rule of every object, the reference the shortcuts are tested against (same issues, same order).
    fast: bool = True

    def resource(
        self, resource: dict[str, Any], profile: CompiledProfile, expression: str, root: dict[str, Any]
    ) -> None:
        env = Env(resource, root, self.relaxed_iin)
        self._element(Item(resource, None, profile.type, expression), profile.root, env, profile.type)

    def conforms(self, value: dict[str, Any], url: str) -> bool:
        """Whether ``value`` meets the profile at ``url`` (errors only), without recording issues."""
        profile = self.registry.compiled(url)
        if profile is None:
            return False
        probe = Walk(self.registry, self.terminology, self.relaxed_iin)
        if profile.kind == "resource":
            probe.resource(value, profile, profile.type, value)
        else:
            env = Env(value, value, self.relaxed_iin)
            probe._element(Item(value, None, profile.type, profile.type), profile.root, env, profile.type)
        return not any(issue.is_error for issue in probe.issues)

    def _kind(self, code: str) -> int:
        """How ``_node`` treats an item of type ``code``."""
        kind: int | None = self.registry.derived.get(("kind", code))
        if kind is None:
            kind = self.registry.derived[("kind", code)] = (
                _RESOURCE if code == "Resource" or self.registry.is_resource_type(code) else
                _EXTENSION if code == "Extension" else _MEMO if code in MEMO_TYPES else _ELEMENT)
        return kind

    def _node(self, item: Item, rule: ElementRule, env: Env, container: tuple[str, str]) -> None:
        code = item.type_code
        kind = self._kind(code)
        if kind == _RESOURCE:
            self._contained(item, rule, env)
        elif kind == _EXTENSION and isinstance(item.value, dict):
            self._extension(item, rule, env, container)
        elif kind == _MEMO and self.memo is not None:
            self._remembered(item, rule, env, self.memo)
        else:
            plan = rule.plan or plan_of(rule)
            self._element(item, rule, env, rule.path if plan.structural else code)

    def _remembered(self, item: Item, rule: ElementRule, env: Env,
                    memo: dict[Any, tuple[tuple[Issue, str], ...]]) -> None:
        """The subtree's issues from the memo when the same value met the same rule before, else walked and
        remembered — unless its judgement read anything outside it (``_reads``) or an issue lies outside it."""
        key = (id(rule), item.type_code, memo_key(item.value), memo_key(item.extension))
        found = memo.get(key)
        if found is not None:
            where = item.expression
            self.issues.extend(Issue(i.severity, i.code, i.diagnostics, where + tail) for i, tail in found)
            return
        start, reads = len(self.issues), self._reads
        self._element(item, rule, env, self._type_path(item, rule))
        if self._reads != reads:
            return
        where, size = item.expression, len(item.expression)
        new = self.issues[start:]
        if all(i.expression is not None and i.expression.startswith(where) for i in new):
            if len(memo) >= MEMO_LIMIT:
                memo.clear()
            memo[key] = tuple((i, (i.expression or "")[size:]) for i in new)

    def _type_path(self, item: Item, rule: ElementRule) -> str:
        return rule.path if plan_of(rule).structural else item.type_code

    def _element(
        self, item: Item, rule: ElementRule, env: Env, type_path: str, skip: frozenset[str] = frozenset()
    ) -> None:
        plan = rule.plan or plan_of(rule)
        code = item.type_code
        if not self.invariants_only and (plan.fixed_or_pattern or rule.binding is not None or code in _CHECKED_TYPES):
            self._checks(item, rule, env, plan)
        if skip:
            self._invariants(item, rule, env, type_path, skip)
        elif plan.steps:
            self._evaluate(item, plan.steps, plan.ele_1, env, type_path)
        elif plan.ele_1 is not None and self.invariants:  # ele-1 alone, as _evaluate evaluates it
            focus = item.value if item.value is not None else item.extension
            if not (len(focus) > ("id" in focus) if isinstance(focus, dict) else focus is not None):
                self._violated(plan.ele_1, item)
        if plan.choice and code:
            # A choice element's snapshot cannot list its per-type invariants; add the chosen type's.
            if skip:
                known = skip | {c.key for c in rule.constraints}
                extra = _steps(c for c in self.registry.type_constraints(TypeRule(code)) if c.key not in known)
            else:
                extra = plan.by_type.get(code)  # type: ignore[assignment]
                if extra is None:
                    known = {c.key for c in rule.constraints}
                    extra = plan.by_type[code] = _steps(
                        c for c in self.registry.type_constraints(TypeRule(code)) if c.key not in known)
            self._evaluate(item, extra[0], extra[1], env, type_path)
        if isinstance(item.value, dict):
            source = rule if rule.children else self._type_root(code)
            if source is not None:
                self._children(item.value, source, item.expression, env, (code, rule.path))
        if isinstance(item.extension, dict):
            core_extension = self._type_root("Element")
            if core_extension is not None:
                container = (code, rule.path)
                self._children(item.extension, core_extension, item.expression, env, container)

    def _type_root(self, type_code: str) -> ElementRule | None:
        derived = self.registry.derived
        key = ("root", type_code)
        if key in derived:
            found: ElementRule | None = derived[key]
            return found
        if (type_code in _STRUCTURAL and type_code != "Element") or self.registry.is_primitive(type_code):
            found = None
        else:
            profile = self.registry.core(type_code)
            found = profile.root if profile is not None else None
        derived[key] = found
        return found

    def _checks(self, item: Item, rule: ElementRule, env: Env, plan: _Plan) -> None:
        if plan.fixed_or_pattern:
            self.issues.extend(checks.check_fixed_and_pattern(item, rule))
        if rule.binding is not None:
            self.issues.extend(checks.check_binding(item, rule.binding, self.terminology))
        if item.type_code == "Reference":
            self._reads += 1
            allowed = plan.allowed
            if allowed is None:
                allowed = plan.allowed = (checks.allowed_types(rule, self.registry),)
            self.issues.extend(checks.check_reference(item, rule, self.registry, env.root, self.conforms, allowed[0]))
        elif item.type_code == "Attachment":
            self.issues.extend(checks.check_attachment(item))
        elif item.type_code == "markdown":
            self.issues.extend(checks.check_markdown(item))

    def _invariants(self, item: Item, rule: ElementRule, env: Env, type_path: str, skip: frozenset[str]) -> None:
        if not self.invariants:
            return
        if skip:
            steps, ele_1 = _steps(c for c in rule.constraints if c.key not in skip)
        else:
            plan = plan_of(rule)
            steps, ele_1 = plan.steps, plan.ele_1
        self._evaluate(item, steps, ele_1, env, type_path)

    def _evaluate(self, item: Item, steps: tuple[Step, ...], ele_1: Constraint | None, env: Env,
                  type_path: str) -> None:
        if not self.invariants:
            return
        focus = item.value if item.value is not None else item.extension
        # ele-1, hasValue() or (children().count() > id.count()), as natives._ele_1 says it
        # (an object has a member other than id when it has more members than whether it has an id)
        if ele_1 is not None and not (len(focus) > ("id" in focus) if isinstance(focus, dict) else focus is not None):
            self._violated(ele_1, item)
        for constraint, native in steps:
            if native is not None:
                if constraint.key in _READS_ENV:
                    self._reads += 1
                holds = native(focus, env)
            else:
                self._reads += 1  # FHIRPath may read %resource
                try:
                    holds = evaluate_with_engine(constraint.key, constraint.expression, focus, type_path, env)
                except EvaluationError as exc:
                    self.issues.append(Issue("warning", "processing", f"{constraint.key}: could not be evaluated "
                                             f"({exc})", item.expression))
                    continue
            if not holds:
                self._violated(constraint, item)

    def _violated(self, constraint: Constraint, item: Item) -> None:
        severity: Severity = "error" if constraint.severity == "error" else "warning"
        self.issues.append(Issue(severity, "invariant", f"{constraint.key}: {constraint.human}", item.expression))

    def _children(self, obj: dict[str, Any], source: ElementRule, expression: str, env: Env,
                  container: tuple[str, str]) -> None:
        index = child_index(source)
        slots = index.slots
        if not self.fast or slots is None:
            self._every_child(obj, index, expression, env, container)
            return
        # The entries the object's keys name (most of a definition's elements are absent from a given object),
        # the required ones and the choice elements a stray key may be a foreign type of, in definition order:
        # the same visits, in the same order, as ``_every_child``, which goes over every entry. Objects of one
        # shape (the same keys in the same order: a Coding's system, code, display) share the visit list.
        shape = tuple(obj)
        visits = index.shapes.get(shape)
        if visits is None:
            visits = self._visits(obj, index, slots)
            derived = self.registry.derived
            kept = derived.get("shapes", 0)
            if len(index.shapes) < _SHAPES and kept < _SHAPES_IN_ALL:
                index.shapes[shape] = visits
                derived["shapes"] = kept + 1
        for rule, choice_keys, twin, how, code, kind, type_path in visits:
            if how == _SCALAR:  # a trivial primitive, present, without its ``_name``: judged by its count
                value = obj[rule.json_name]
                if value is not None and not isinstance(value, dict | list):
                    if not self.invariants_only and (rule.min > 1 or (rule.max is not None and rule.max < 1)):
                        self._cardinality(rule, 1, f"{expression}.{rule.json_name}")
                    continue
                count = _scalars(value)
                if count >= 0:
                    if not self.invariants_only:
                        self._cardinality(rule, count, f"{expression}.{rule.json_name}")
                    continue
            elif how == _OBJECT:  # no _name, no slicing: what _child and _items do with one object or an array
                value = obj[rule.json_name]
                # what _node would do: straight to _element for a plain element (a memo type when there is no memo)
                direct = kind == _ELEMENT or (kind == _MEMO and self.memo is None)
                if type(value) is dict:
                    where = f"{expression}.{rule.json_name}"
                    if not self.invariants_only and (rule.min > 1 or (rule.max is not None and rule.max < 1)):
                        self._cardinality(rule, 1, where)
                    if direct:
                        self._element(Item(value, None, code, where), rule, env, type_path)
                    else:
                        self._node(Item(value, None, code, where), rule, env, container)
                    continue
                if type(value) is list:
                    where = f"{expression}.{rule.json_name}"
                    items = [Item(v, None, code, f"{where}[{i}]") for i, v in enumerate(value) if v is not None]
                    if not items and rule.id not in index.required:
                        continue
                    if not self.invariants_only:
                        self._cardinality(rule, len(items), where)
                    for item in items:
                        if direct:
                            self._element(item, rule, env, type_path)
                        else:
                            self._node(item, rule, env, container)
                    continue
            self._child(obj, index, rule, choice_keys, twin, expression, env, container)

    def _visits(self, obj: dict[str, Any], index: _ChildIndex, slots: dict[str, int]) -> list[_Visit]:
        found: list[int] = []
        strays = False
        for key in obj:
            position = slots.get(key)
            if position is None:
                strays = True
            else:
                found.append(position)
        found.extend(index.required_at)
        if strays:
            found.extend(self._stray_choices(obj, index, slots))
        trivial = index.trivial
        if trivial is None:
            trivial = index.trivial = [self._trivial(rule) for rule, _, _ in index.entries]
        out: list[_Visit] = []
        for position in sorted(set(found)):
            rule, choice_keys, twin = index.entries[position]
            alone = choice_keys is None and rule.json_name in obj and twin not in obj
            how = (_SCALAR if alone and trivial[position] else _OBJECT if alone and rule.slicing is None
                   else _GENERAL)
            code = rule.type_codes[0] if rule.types else ""
            out.append((rule, choice_keys, twin, how, code, self._kind(code),
                        rule.path if plan_of(rule).structural else code))
        return out

    @staticmethod
    def _stray_choices(obj: dict[str, Any], index: _ChildIndex, slots: dict[str, int]) -> list[int]:
        """The choice entries a key no entry reads may be a foreign type of (``valueFoo`` of ``value[x]``)."""
        out = []
        for key in obj:
            if key in slots:
                continue
            name = key[1:] if key.startswith("_") else key
            for position, prefix in index.choices:
                if name.startswith(prefix) and name[len(prefix):][:1].isupper():
                    out.append(position)
        return out

    def _trivial(self, rule: ElementRule) -> bool:
        """Whether a scalar value of ``rule``, without a ``_name`` object, leaves nothing to judge beyond the
        cardinality: no slicing, fixed/pattern, binding or invariant other than ``ele-1`` (which a value that is
        present meets), not a choice, and of a type ``_node`` and ``_checks`` judge no further (a primitive)."""
        if rule.slicing is not None or rule.is_choice or len(rule.types) > 1 or rule.binding is not None:
            return False
        plan = plan_of(rule)
        if plan.steps or plan.fixed_or_pattern or plan.choice:
            return False
        code = rule.type_codes[0] if rule.types else ""
        return not (code in _JUDGED_TYPES or code in MEMO_TYPES or self.registry.is_resource_type(code))

    def _every_child(self, obj: dict[str, Any], index: _ChildIndex, expression: str, env: Env,
                     container: tuple[str, str]) -> None:
        """Every entry of the index in turn (the reference path; ``fast=False``)."""
        for rule, choice_keys, twin in index.entries:
            self._child(obj, index, rule, choice_keys, twin, expression, env, container)

    def _child(self, obj: dict[str, Any], index: _ChildIndex, rule: ElementRule,
               choice_keys: list[tuple[str, str]] | None, twin: str, expression: str, env: Env,
               container: tuple[str, str]) -> None:
        foreign = 0
        if choice_keys is None:
            # most of a definition's elements are absent from a given object: skip them before any work
            if rule.json_name not in obj and twin not in obj and rule.id not in index.required:
                return
            raw = obj.get(rule.json_name)
            if self.fast and type(raw) is dict and rule.slicing is None and obj.get(twin) is None:
                # one object (a Coding, a Reference, a backbone element): what _items and the loop below do
                if not self.invariants_only and (rule.min > 1 or (rule.max is not None and rule.max < 1)):
                    self._cardinality(rule, 1, f"{expression}.{rule.json_name}")
                name = rule.json_name
                self._node(Item(raw, None, rule.type_codes[0] if rule.types else "", f"{expression}.{name}"),
                           rule, env, container)
                return
            items = _items(obj, rule.json_name, rule.type_codes[0] if rule.types else "", expression)
        else:
            items = [i for key, code in choice_keys for i in _items(obj, key, code, expression)]
            foreign = self._foreign_choices(obj, rule, index, expression)
        if not items and not foreign and rule.id not in index.required:
            return
        if not self.invariants_only:
            self._cardinality(rule, len(items) + foreign, f"{expression}.{rule.json_name}")
        rules = [rule] * len(items)
        if rule.slicing is not None:
            outcome = assign_slices(rule, items, expression, self.conforms)
            rules = outcome.rules
            if not self.invariants_only:
                self.issues.extend(outcome.issues)
        for item, item_rule in zip(items, rules, strict=True):
            self._node(item, item_rule, env, container)

    def _cardinality(self, rule: ElementRule, count: int, expression: str) -> None:
        if count < rule.min:
            self.issues.append(Issue("error", "required", f"{rule.path}: minimum required = {rule.min}, "
                                     f"found {count}", expression))
        if rule.max is not None and count > rule.max:
            self.issues.append(Issue("error", "structure", f"{rule.path}: maximum allowed = {rule.max}, "
                                     f"found {count}", expression))

    def _foreign_choices(self, obj: dict[str, Any], rule: ElementRule, index: _ChildIndex, expression: str) -> int:
        """Count (and report) values of a choice element in a type the profile does not allow."""
        found = 0
        prefix = rule.json_name
        for key in obj:
            name = key[1:] if key.startswith("_") else key
            if name in index.known or not name.startswith(prefix) or not name[len(prefix):][:1].isupper():
                continue
            if key.startswith("_") and name in obj:
                continue  # the value and its ``_name`` twin are one occurrence
            found += 1
            if not self.invariants_only:
                self.issues.append(Issue("error", "structure", f"{rule.path}: type {name[len(prefix):]} is not "
                                         f"allowed here (allowed: {', '.join(rule.type_codes)})",
                                         f"{expression}.{name}"))
        return found

    def _contained(self, item: Item, rule: ElementRule, env: Env) -> None:
        self._reads += 1
        resource = item.value
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            return
        profiles = [p for t in rule.types for p in t.profiles] or [CORE_PREFIX + resource["resourceType"]]
        # Contained resources share the container's %rootResource; Bundle entries stand alone (R4 §2.37).
        root = env.root if rule.name == "contained" else resource
        for url in profiles:
            profile = self.registry.compiled(url)
            if profile is not None:
                self.resource(resource, profile, item.expression, root)

    def _extension(self, item: Item, rule: ElementRule, env: Env, container: tuple[str, str]) -> None:
        profiles = [p for t in rule.types for p in t.profiles]
        if not profiles and rule.slice_name and rule.children:
            # A sub-extension defined inline in a complex extension (url is a plain name, R4 §2.22.1.1).
            self._element(item, rule, env, "Extension")
            return
        url = profiles[0] if profiles else item.value.get("url")
        definition = self.registry.compiled(url) if isinstance(url, str) else None
        if definition is None or definition.type != "Extension":
            # A relative url inside an extension names a sub-extension its parent defines (R4 §2.22.1.1); an
            # unknown parent is reported once, not each of its parts.
            nested = container[0] == "Extension" and isinstance(url, str) and ":" not in url
            if not self.invariants_only and not nested:
                modifier = rule.name == "modifierExtension"
                why = ("a modifier extension must be understood" if modifier else
                       "no definition is known, so it cannot be validated")
                self.issues.append(Issue(unknown_extension_severity(url, modifier), "structure",
                                         f"Unknown extension {url}: {why}", item.expression))
            core = self.registry.core("Extension")
            if core is None:
                return
            definition = core
        elif not self.invariants_only:
            self._extension_context(definition, item, container)
        skip = frozenset(c.key for c in definition.root.constraints)
        self._invariants(item, rule, env, "Extension", skip)
        self._element(item, definition.root, env, "Extension")

    def _extension_context(self, definition: CompiledProfile, item: Item, container: tuple[str, str]) -> None:
        if not definition.contexts or _ANY_CONTEXT.intersection(definition.contexts):
            return
        type_code, path = container
        if type_code in definition.contexts or path in definition.contexts:
            return
        self.issues.append(Issue("error", "structure", f"Extension {definition.url} is not allowed on "
                                 f"{path} (contexts: {', '.join(definition.contexts)})", item.expression))
