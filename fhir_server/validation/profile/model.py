"""Compiled form of a StructureDefinition snapshot: one ``ElementRule`` tree per profile.

The tree is built once per profile (``compiler.py``) and cached by the registry, so validation walks
plain dataclasses instead of re-reading ElementDefinitions (FHIR R4 §2.12 ElementDefinition).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class TypeRule:
    """One ``ElementDefinition.type`` entry."""

    code: str
    profiles: tuple[str, ...] = ()
    target_profiles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Constraint:
    """One invariant (``ElementDefinition.constraint``) after errata overrides are applied."""

    key: str
    severity: str
    human: str
    expression: str
    source: str


@dataclass(frozen=True, slots=True)
class Binding:
    strength: str
    value_set: str


@dataclass(frozen=True, slots=True)
class Discriminator:
    kind: str  # value | pattern | type | profile | exists
    path: str


@dataclass(frozen=True, slots=True)
class Slicing:
    discriminators: tuple[Discriminator, ...]
    rules: str  # open | closed | openAtEnd
    ordered: bool


@dataclass(slots=True)
class ElementRule:
    """Everything the validator needs about one element (or one slice of it).

    ``name`` is the last path segment as written in the snapshot (``value[x]`` for choices);
    ``children`` maps the JSON property name (without ``[x]``) to the child rule. An element with no
    children and one complex type is validated against that type's own compiled definition.
    """

    id: str
    path: str
    name: str
    min: int
    max: int | None
    types: tuple[TypeRule, ...]
    fixed: Any = None
    pattern: Any = None
    binding: Binding | None = None
    constraints: tuple[Constraint, ...] = ()
    slicing: Slicing | None = None
    slices: list[ElementRule] = field(default_factory=list)
    slice_name: str | None = None
    children: dict[str, ElementRule] = field(default_factory=dict)
    content_reference: str | None = None
    is_modifier: bool = False
    # Walker-private lookup over ``children`` (built on first use, see walker.child_index), and the rule's
    # validation plan (walker.plan_of: its invariants with their natives resolved, the per-type extras).
    index: Any = None
    plan: Any = None
    # Derived once: the walker asks for these of every child rule of every object it validates (about a
    # million times per thousand Synthea resources), so they are not recomputed per call.
    is_choice: bool = field(init=False, repr=False, compare=False)
    json_name: str = field(init=False, repr=False, compare=False)
    _codes: tuple[tuple[TypeRule, ...], tuple[str, ...]] | None = field(default=None, init=False, repr=False,
                                                                        compare=False)

    def __post_init__(self) -> None:
        self.is_choice = self.name.endswith("[x]")
        self.json_name = self.name[:-3] if self.is_choice else self.name

    @property
    def type_codes(self) -> tuple[str, ...]:
        cached = self._codes
        if cached is None or cached[0] is not self.types:  # the compiler may give a rule its target's types
            cached = self._codes = (self.types, tuple(t.code for t in self.types))
        return cached[1]


@dataclass(slots=True)
class CompiledProfile:
    """A compiled StructureDefinition: its root rule plus identity."""

    url: str
    type: str
    kind: str
    root: ElementRule
    # Extension definitions only: where the extension may be used (StructureDefinition.context).
    contexts: tuple[str, ...] = ()
