"""Element-level checks: fixed/pattern values, terminology bindings and reference targets."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from typing import Any, Literal, Protocol

from fhir_server.validation.issues import Issue, Severity
from fhir_server.validation.profile.coreterm import core_membership
from fhir_server.validation.profile.model import Binding, ElementRule
from fhir_server.validation.profile.references import contained_target, referenced_type
from fhir_server.validation.profile.registry import CORE_PREFIX, ProfileRegistry
from fhir_server.validation.profile.slicing import Item
from fhir_server.validation.profile.values import codes_of, matches_fixed, matches_pattern

__all__ = [
    "Terminology",
    "allowed_types",
    "check_attachment",
    "check_binding",
    "check_fixed_and_pattern",
    "check_reference",
    "membership",
]


class Terminology(Protocol):
    """What the validator needs from a terminology service (terminology/ implements it)."""

    def check_membership(self, valueset_url: str, system: str | None, code: str) -> bool | None: ...


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "..."


def check_fixed_and_pattern(item: Item, rule: ElementRule) -> list[Issue]:
    issues = []
    if rule.fixed is not None and not matches_fixed(item.value, rule.fixed):
        issues.append(Issue("error", "value", f"{rule.path}: value must be exactly {_short(rule.fixed)}",
                            item.expression))
    if rule.pattern is not None and not matches_pattern(item.value, rule.pattern):
        issues.append(Issue("error", "value", f"{rule.path}: value must match pattern {_short(rule.pattern)}",
                            item.expression))
    return issues


def membership(terminology: Terminology | None, value_set: str, system: str | None, code: str) -> bool | None:
    """Ask the terminology service first; fall back to the R4 core definitions when it cannot tell."""
    if terminology is not None:
        answer = terminology.check_membership(value_set, system, code)
        if answer is not None:
            return answer
    return core_membership(value_set, system, code)


def check_binding(item: Item, binding: Binding, terminology: Terminology | None) -> list[Issue]:
    """required → error, extensible → warning (R4 §4.1.0.3); preferred/example are not checked."""
    if binding.strength not in ("required", "extensible"):
        return []
    severity: Severity = "error" if binding.strength == "required" else "warning"
    codes = codes_of(item.value, item.type_code)
    if not codes:
        if binding.strength == "required" and item.type_code in ("CodeableConcept", "Coding"):
            return [Issue(severity, "code-invalid", f"No code given; a code from {binding.value_set} is required",
                          item.expression)]
        return []
    answers = [membership(terminology, binding.value_set, system, code) for system, code in codes]
    if True in answers or None in answers:
        return []
    shown = ", ".join(f"{s}#{c}" if s else c for s, c in codes)
    return [Issue(severity, "code-invalid", f"Code {shown} is not in value set {binding.value_set} "
                  f"({binding.strength} binding)", item.expression)]


def allowed_types(rule: ElementRule, registry: ProfileRegistry) -> frozenset[str] | None:
    """The resource types a Reference element may point at (None: any)."""
    targets = [p for t in rule.types if t.code == "Reference" for p in t.target_profiles]
    types = {registry.type_of(p) for p in targets}
    if not targets or None in types or "Resource" in types:
        return None
    return frozenset(t for t in types if t)


def check_reference(
    item: Item,
    rule: ElementRule,
    registry: ProfileRegistry,
    root: dict[str, Any],
    conforms: Callable[[dict[str, Any], str], bool],
    allowed: frozenset[str] | Literal[False] | None = False,
) -> list[Issue]:
    """The referenced type must be allowed; a contained target must conform to a non-core target profile.
    ``allowed``: ``allowed_types`` of the rule when the caller has it (False: work it out here)."""
    if not isinstance(item.value, dict):
        return []
    if allowed is False:
        allowed = allowed_types(rule, registry)
    found = referenced_type(item.value, root)
    if found is not None and not registry.is_resource_type(found):
        found = None  # e.g. an IG's logical model in an absolute URL: not a resource type this server can judge
    if allowed is not None and found is not None and found not in allowed:
        return [Issue("error", "structure", f"{rule.path}: a reference to {found} is not allowed here "
                      f"(allowed: {', '.join(sorted(allowed))})", item.expression)]
    target = contained_target(item.value, root)
    if target is None:  # only a contained target can be judged against a target profile
        return []
    profiles = [
        p for t in rule.types for p in t.target_profiles
        if not p.startswith(CORE_PREFIX) and registry.type_of(p) == target.get("resourceType")
    ]
    if profiles and not any(conforms(target, p) for p in profiles):
        return [Issue("error", "structure", f"{rule.path}: the contained target does not conform to "
                      f"{' or '.join(profiles)}", item.expression)]
    return []


# What the reference validator's markdown check treats as the start of an embedded HTML tag: '<' then a letter,
# '/' or '!' ("<b>", "</p>", "<!--"); "a < b" and "<5 mg" are text.
_HTML_TAG = re.compile(r"<[A-Za-z/!]")


def check_markdown(item: Item) -> list[Issue]:
    """Markdown is GFM for optional rendering (R4 datatypes §2.24.0.1, markdown): HTML embedded in it is
    reported as a warning, as the reference validator does by default (JIRA FHIR-38714), so that a patient
    cabinet or an MIS rendering it knows to escape it."""
    value = item.value
    if not isinstance(value, str):
        return []
    found = _HTML_TAG.search(value)
    if found is None:
        return []
    return [Issue("warning", "invalid", "The markdown contains content that appears to be an embedded HTML tag "
                  f"starting at {value[found.start():found.start() + 2]!r}; it will (or should) be escaped "
                  "when rendered", item.expression)]


def check_attachment(item: Item) -> list[Issue]:
    """Attachment.size is the number of bytes of the data (R4 datatypes §2.24.0.10), when both are given."""
    value = item.value
    if not isinstance(value, dict) or not isinstance(value.get("data"), str) or "size" not in value:
        return []
    size = value["size"]
    try:
        actual = len(base64.b64decode("".join(value["data"].split()), validate=True))
    except (binascii.Error, ValueError):
        return []  # not base64: the structural validator reports the data itself
    if isinstance(size, int) and not isinstance(size, bool) and size != actual:
        return [Issue("error", "value", f"Attachment.size {size} does not match the size of the data ({actual} "
                      "bytes)", f"{item.expression}.size")]
    return []
