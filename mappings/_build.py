"""The state of one record being built: the input set, the trace, the issues and the resources read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fhir_server.validation.issues import Issue
from mappings._fhir import Cursor, ResourceSet
from mappings.checks import check_code, ru_display
from mappings.codes import MDD_ITEMS, MDD_PATHS
from mappings.model import Coded, Concept, Source


@dataclass
class Build:
    resources: ResourceSet
    relaxed_iin: bool = False
    trace: dict[str, Source] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    used: dict[str, dict[str, Any]] = field(default_factory=dict)

    def take(self, key: str, cursor: Cursor, rule: str | None = None) -> Any:
        """Record that ``key`` of the record comes from ``cursor`` and return the node's value."""
        self.trace[key] = Source(cursor.key, cursor.path, rule)
        self.used[cursor.key] = cursor.root
        return cursor.node

    def text(self, key: str, cursor: Cursor | None) -> str | None:
        if cursor is None or not isinstance(cursor.node, str) or not cursor.node.strip():
            return None
        return str(self.take(key, cursor))

    def use(self, cursor: Cursor) -> None:
        """Mark a resource as read although no single value of it is copied (e.g. a resolved reference)."""
        self.used[cursor.key] = cursor.root

    def missing(self, item: int, detail: str = "") -> None:
        """An error naming the MD-D item and the FHIR expression it is read from (not an exception)."""
        _, label, _ = MDD_ITEMS[item]
        text = f"MD-D {item} ({label}) is missing" + (f": {detail}" if detail else "")
        self.issues.append(Issue("error", "required", text, MDD_PATHS[item]))

    def warn(self, text: str, where: str | None = None) -> None:
        self.issues.append(Issue("warning", "incomplete", text, where))

    def coded(self, key: str, coding: Cursor, what: str, *, check: bool = True) -> Coded:
        """A Coding (with a string system and code) as :class:`Coded` with the Russian display.

        The code is checked against its system unless ``check`` is False.
        """
        system_node, code_node = coding.child("system"), coding.child("code")
        assert system_node is not None and code_node is not None, "callers pass codings with system and code"
        system = str(self.take(f"{key}.system", system_node))
        code = str(self.take(f"{key}.code", code_node))
        if check:
            self.issues.extend(check_code(system, code, coding.path, what))
        display = ru_display(system, code)
        if display is not None:
            self.trace[f"{key}.display"] = Source("terminology", f"{system}|{code}")
        else:
            display = self.text(f"{key}.display", coding.child("display"))
        return Coded(system, code, display)

    def concept(self, key: str, cc: Cursor | None, what: str) -> Concept | None:
        """A CodeableConcept reduced to its first coding with a system and code, plus its text."""
        if cc is None or not isinstance(cc.node, dict):
            return None
        first = next((c for c in cc.children("coding")
                      if isinstance(c.node.get("system"), str) and isinstance(c.node.get("code"), str)), None)
        coding = self.coded(f"{key}.coding", first, what, check=False) if first is not None else None
        text = self.text(f"{key}.text", cc.child("text"))
        if coding is None and text is None:
            return None
        return Concept(coding, text)
