"""Reference resolution inside a transaction (FHIR R4 http.html §3.1.0.11.2 and §3.1.0.11.3).

``urn:uuid:`` / ``urn:oid:`` fullUrls and the fullUrls of entries become ``Type/id``; conditional
references (``Patient?identifier=x``) are searched inside the transaction and must match exactly one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fhir_server.errors import FhirError

Resolver = Callable[[str], str | None]


def rewrite_references(node: Any, resolve: Resolver, path: str) -> None:
    """Replace, in place, every ``Reference.reference`` the resolver knows.

    The resolver returns the new reference, or None to keep the value; it raises FhirError for a
    reference that must resolve and cannot.
    """
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str):
            new = resolve(ref)
            if new is not None:
                node["reference"] = new
        for key, value in node.items():
            if isinstance(value, dict) and value.get("resourceType") == "Bundle":
                continue  # a nested Bundle (a signed document) resolves its own references; never alter it
            if isinstance(value, dict | list):
                rewrite_references(value, resolve, f"{path}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            if isinstance(item, dict) and item.get("resourceType") == "Bundle":
                continue
            if isinstance(item, dict | list):
                rewrite_references(item, resolve, f"{path}[{i}]")


def is_local_urn(ref: str) -> bool:
    return ref.startswith(("urn:uuid:", "urn:oid:"))


def is_conditional(ref: str) -> bool:
    head, sep, _ = ref.partition("?")
    return bool(sep) and "/" not in head and head[:1].isupper()


def unresolved(ref: str, where: str) -> FhirError:
    return FhirError("not_found", f"reference {ref!r} matches no entry of this transaction", code="not-found",
                     expression=where)
