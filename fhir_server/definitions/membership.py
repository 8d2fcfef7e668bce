"""Precomputed code sets per ValueSet for the validators' hot path (target: < 5 µs per check).

Built from the one :func:`fhir_server.definitions.expansion.evaluate`; used by the terminology service's
``check_membership`` / ``$validate-code`` and by the profile validator's fallback over the R4 core.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from fhir_server.definitions.expansion import CanonicalSource, ComposeResult


@dataclass(frozen=True, slots=True)
class OpenSystem:
    """A code system the ValueSet draws on that is not (fully) held: which unknown codes might be members."""

    known: frozenset[str] = frozenset()  # codes we do hold: those are decided, not open
    shape: re.Pattern[str] | None = None  # a possible member must have this shape
    anchors: frozenset[str] | None = None  # ...and sit under one of these held concepts
    locate: Callable[[str], str | None] | None = None  # where an unknown code would sit

    def might_contain(self, code: str) -> bool:
        if code in self.known:
            return False
        if self.shape is not None and not self.shape.fullmatch(code):
            return False
        if self.anchors is not None and self.locate is not None:
            return self.locate(code) in self.anchors
        return True


@dataclass(frozen=True, slots=True)
class MembershipIndex:
    """Which codes a ValueSet contains, and for which systems that cannot be known."""

    members: dict[str, frozenset[str]]
    all_codes: frozenset[str]
    unknown_systems: dict[str, OpenSystem]
    uncertain_excludes: frozenset[str]

    @classmethod
    def build(cls, result: ComposeResult, registry: CanonicalSource) -> MembershipIndex:
        members: dict[str, set[str]] = {}
        for (system, code), entry in result.entries.items():
            # Abstract (notSelectable) concepts group codes and cannot be used to code data ($validate-code,
            # parameter "abstract" defaults to false in R4).
            if not entry.abstract:
                members.setdefault(system, set()).add(code)
        unknown = {s: OpenSystem() for s in result.unheld}
        for system, anchors in result.partial.items():
            cs = registry.code_system(system)
            if system not in unknown and cs is not None:
                unknown[system] = OpenSystem(
                    frozenset(cs.concepts),
                    registry.code_syntax(system),
                    None if anchors is None else frozenset(anchors),
                    registry.anchor_locator(system),
                )
        return cls(
            members={s: frozenset(c) for s, c in members.items()},
            all_codes=frozenset(code for codes in members.values() for code in codes),
            unknown_systems=unknown,
            uncertain_excludes=frozenset(result.uncertain_excludes),
        )

    def check(self, system: str | None, code: str) -> bool | None:
        """True / False, or None when a code system involved is not (fully) held by this server."""
        if system is None:
            # A bare ``code`` element: the system is implied by the binding, so any system in the set will do.
            if code in self.all_codes:
                return None if self.uncertain_excludes else True
            return None if self.unknown_systems else False
        codes = self.members.get(system)
        if codes is not None and code in codes:
            return None if system in self.uncertain_excludes else True
        open_system = self.unknown_systems.get(system)
        if open_system is not None:
            return None if open_system.might_contain(code) else False
        return False
