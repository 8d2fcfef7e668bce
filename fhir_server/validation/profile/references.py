"""Reference target checks: the referenced type must be one the element allows (R4 §2.3.0.2).

The type comes from ``Reference.type`` or the literal reference (``Patient/1``, an absolute URL ending in
``Patient/1[/_history/2]``, or ``#id`` for a contained resource). ``urn:uuid:``/``urn:oid:`` references and
identifier-only references carry no type and are not checked. Only contained targets can be validated
against a target *profile*; resolving server-side or external targets is the caller's job.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["contained_target", "referenced_type"]

_LITERAL = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?$")


def contained_target(reference: dict[str, Any], root: dict[str, Any]) -> dict[str, Any] | None:
    literal = reference.get("reference")
    if not isinstance(literal, str) or not literal.startswith("#") or literal == "#":
        return None
    for resource in root.get("contained", []):
        if isinstance(resource, dict) and resource.get("id") == literal[1:]:
            return resource
    return None


def referenced_type(reference: dict[str, Any], root: dict[str, Any]) -> str | None:
    """The resource type a Reference points at, or None when it cannot be known without resolving."""
    declared = reference.get("type")
    if isinstance(declared, str):
        return declared.rsplit("/", 1)[-1]
    literal = reference.get("reference")
    if not isinstance(literal, str):
        return None
    if literal == "#":
        return str(root.get("resourceType"))
    target = contained_target(reference, root)
    if target is not None:
        return str(target.get("resourceType"))
    match = _LITERAL.search(literal)
    return match.group(1) if match else None
