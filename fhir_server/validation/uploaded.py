"""StructureDefinitions stored on the server are profiles the validator knows (issue 14 §1).

An IG publisher or a regulator POSTs (or PUTs) a StructureDefinition; from then on resources that declare it
in ``meta.profile``, and ``$validate?profile=`` naming it, are validated against it. The write hook registers
each StructureDefinition as its version is stored; at start-up :func:`load_stored` registers those already in
the store (``definitions/publish.py`` calls :func:`install`). A StructureDefinition that cannot be used (no
snapshot can be generated from its differential) is refused on write by ``ProfileValidation``.

The registry is a cache of the store: a write that is rolled back after its hook ran leaves the profile known
until the next start, and a deleted StructureDefinition stays known until then.
"""

from __future__ import annotations

from typing import Any

import orjson

from fhir_server.storage.protocols import StoredResource, TxView

__all__ = ["install", "load_stored", "register_hook"]

_LIMIT = 100_000


def register_hook(view: TxView, services: Any, resource: dict[str, Any], stored: StoredResource) -> None:
    """A ``Services.write_hooks`` entry: a stored StructureDefinition becomes a known profile."""
    profiles = getattr(services, "profiles", None)
    if resource.get("resourceType") == "StructureDefinition" and profiles is not None and "url" in resource:
        profiles.registry.add(resource)


def load_stored(view: TxView, services: Any) -> int:
    """Register every current StructureDefinition of the store; returns how many."""
    profiles = getattr(services, "profiles", None)
    if profiles is None:
        return 0
    from fhir_server.search import parse_search

    count = 0
    for rtype, rid in view.search_ids(parse_search("StructureDefinition", [], strict=True), _LIMIT):
        current = view.current(rtype, rid)
        if current is None or current.deleted or current.data is None:
            continue
        resource = orjson.loads(current.data)
        if isinstance(resource, dict) and isinstance(resource.get("url"), str):
            if not profiles.registry.holds(resource):
                profiles.registry.add(resource)
            count += 1
    return count


def install(services: Any) -> None:
    """Add the write hook once."""
    if register_hook not in services.write_hooks:
        services.write_hooks.append(register_hook)
