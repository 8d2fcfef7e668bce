"""Rules of a Bundle as a whole (R4 §3.3 Bundle, §3.3.1 Documents, §4.4 Messaging), beyond its invariants.

* ``entry.fullUrl`` is absolute (a URL with a scheme, ``urn:uuid:`` or ``urn:oid:``; R4 Bundle.entry.fullUrl),
  and when it is a RESTful URL (``[base]/Type/id``) it names the entry's own resource type and id.
* The same resource (fullUrl, or type and id, with the same version) appears once, except in a history.
* ``searchset``: ``search.mode = outcome`` entries are OperationOutcomes; ``match`` entries have an id and
  are of the type searched (the ``self`` link's type or ``_type``).
* ``document``: the first entry is a Composition (bdl-11); ``message``: a MessageHeader (bdl-12). In both,
  the references of the entries resolve to entries of the Bundle, by R4's resolution rules (§3.3.1.4.1):
  an absolute or ``urn:`` reference matches a ``fullUrl`` (and ``/_history/v`` its ``meta.versionId``); a
  relative one is resolved against the base of the referring entry's RESTful fullUrl. A relative reference
  from an entry without a RESTful fullUrl, and an absolute one to another server, cannot be resolved here
  and is not judged.

The document and message rules repeat bdl-11/bdl-12 so that they hold on writes that do not run invariants;
their issues carry the same code and expression, and callers merge duplicates.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fhir_server.validation.issues import Issue

__all__ = ["bundle_issues", "parameters_issues"]

_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S+")
_RESTFUL = re.compile(r"^(?P<base>.+)/(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})"
                      r"(?:/_history/(?P<version>[A-Za-z0-9\-.]{1,64}))?$")
_RELATIVE = re.compile(r"^(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})"
                       r"(?:/_history/(?P<version>[A-Za-z0-9\-.]{1,64}))?$")

IsResourceType = Callable[[str], bool]


def _restful(url: str, is_resource_type: IsResourceType) -> re.Match[str] | None:
    match = _RESTFUL.match(url) if not url.startswith("urn:") else None
    return match if match is not None and is_resource_type(match["type"]) else None


def _version(resource: Any) -> str | None:
    meta = resource.get("meta") if isinstance(resource, dict) else None
    version = meta.get("versionId") if isinstance(meta, dict) else None
    return version if isinstance(version, str) else None


def bundle_issues(bundle: dict[str, Any], is_resource_type: IsResourceType, path: str = "Bundle") -> list[Issue]:
    """The Bundle-level problems of ``bundle`` (and of Bundles inside its entries)."""
    raw = bundle.get("entry", [])
    if not isinstance(raw, list):
        return []
    entries = [e if isinstance(e, dict) else {} for e in raw]
    kind = bundle.get("type")
    issues: list[Issue] = []
    seen: dict[tuple[str, str | None], int] = {}
    for i, entry in enumerate(entries):
        where = f"{path}.entry[{i}]"
        resource = entry.get("resource")
        resource = resource if isinstance(resource, dict) else None
        issues += _full_url(entry.get("fullUrl"), resource, where, is_resource_type)
        key = _identity(entry, resource)
        if key is not None and kind != "history":
            if key in seen:
                issues.append(Issue("error", "invalid", f"Duplicate entry: entry[{seen[key]}] holds the same "
                                    f"resource ({key[0]}{'' if key[1] is None else ' version ' + key[1]})", where))
            else:
                seen[key] = i
        if resource is not None and resource.get("resourceType") == "Bundle":
            issues += bundle_issues(resource, is_resource_type, f"{where}.resource")
    if kind == "searchset":
        issues += _searchset(bundle, entries, path)
    elif kind in ("document", "message"):
        issues += _document_or_message(kind, entries, path, is_resource_type)
    return issues


def _full_url(full_url: Any, resource: dict[str, Any] | None, where: str,
              is_resource_type: IsResourceType) -> list[Issue]:
    if not isinstance(full_url, str):
        return []
    if not _ABSOLUTE.fullmatch(full_url):
        return [Issue("error", "invalid", f"The fullUrl must be an absolute URL (not '{full_url}')",
                      f"{where}.fullUrl")]
    match = _restful(full_url, is_resource_type)
    if match is None or resource is None or match["version"] is not None:
        return []
    own = (resource.get("resourceType"), resource.get("id"))
    if (match["type"], match["id"]) != own:
        # R4 §3.3.1: "fullUrl SHALL NOT disagree with the id in the resource". An error, as the reference
        # validator has it; the Bundle rules run in strict mode only ($validate, or a strict server), so a
        # default write of an MIS document whose fullUrls are numbered apart from ids is still accepted.
        return [Issue("error", "invalid", f"The fullUrl '{full_url}' looks like a RESTful server URL, so it must "
                      f"end with the resource's type and id ({own[0]}/{own[1]})", f"{where}.fullUrl")]
    return []


def _identity(entry: dict[str, Any], resource: dict[str, Any] | None) -> tuple[str, str | None] | None:
    full_url = entry.get("fullUrl")
    if isinstance(full_url, str):
        return full_url, _version(resource)
    if resource is not None and isinstance(resource.get("id"), str) and "request" not in entry:
        return f"{resource.get('resourceType')}/{resource['id']}", _version(resource)
    return None


def _searchset(bundle: dict[str, Any], entries: list[dict[str, Any]], path: str) -> list[Issue]:
    issues = []
    searched = _searched_types(bundle)
    for i, entry in enumerate(entries):
        search, resource = entry.get("search"), entry.get("resource")
        mode = search.get("mode") if isinstance(search, dict) else None
        if not isinstance(resource, dict):
            continue
        where = f"{path}.entry[{i}].resource"
        rtype = resource.get("resourceType")
        if mode == "outcome" and rtype != "OperationOutcome":
            issues.append(Issue("error", "invalid", f"An entry with search.mode 'outcome' must be an "
                                f"OperationOutcome, not {rtype}", where))
        elif mode == "match":
            if not isinstance(resource.get("id"), str):
                issues.append(Issue("error", "invalid", "Search results (search.mode 'match') must have ids", where))
            if searched and rtype not in searched:
                issues.append(Issue("error", "invalid", f"{rtype} is not a type this search asked for "
                                    f"({', '.join(sorted(searched))})", where))
    return issues


def _searched_types(bundle: dict[str, Any]) -> set[str]:
    """The resource types the ``self`` link searched: its path's type, or its ``_type`` parameter."""
    for link in bundle.get("link", []):
        if isinstance(link, dict) and link.get("relation") == "self" and isinstance(link.get("url"), str):
            parts = urlsplit(link["url"])
            named = {t for v in parse_qs(parts.query).get("_type", []) for t in v.split(",") if t}
            last = parts.path.rstrip("/").rsplit("/", 1)[-1]
            if named:
                return named
            return {last} if last[:1].isupper() and last.isalpha() else set()
    return set()


def _document_or_message(kind: str, entries: list[dict[str, Any]], path: str,
                         is_resource_type: IsResourceType) -> list[Issue]:
    first = "Composition" if kind == "document" else "MessageHeader"
    key = "bdl-11" if kind == "document" else "bdl-12"
    issues = []
    head = entries[0].get("resource") if entries else None
    if not isinstance(head, dict) or head.get("resourceType") != first:
        issues.append(Issue("error", "invariant", f"{key}: A {kind} must have a {first} as the first resource", path))
    index: dict[str, list[str | None]] = {}
    for entry in entries:
        if isinstance(entry.get("fullUrl"), str):
            index.setdefault(entry["fullUrl"], []).append(_version(entry.get("resource")))
    for i, entry in enumerate(entries):
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            continue
        base = _restful(entry["fullUrl"], is_resource_type) if isinstance(entry.get("fullUrl"), str) else None
        for where, reference in _references(resource, f"{path}.entry[{i}].resource"):
            if _resolves(reference, base["base"] if base else None, index, is_resource_type) is False:
                issues.append(Issue("error", "invalid", f"Reference '{reference}' does not resolve to an entry of "
                                    f"this {kind} (R4 §3.3.1.4.1)", where))
    return issues


def _references(node: Any, where: str) -> Iterator[tuple[str, str]]:
    """(expression, reference) for every Reference.reference below ``node``; contained resources are local."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield where, value
            elif key != "contained":
                yield from _references(value, f"{where}.{key}")
    elif isinstance(node, list):
        for n, item in enumerate(node):
            yield from _references(item, f"{where}[{n}]")


def _resolves(reference: str, base: str | None, index: dict[str, list[str | None]],
              is_resource_type: IsResourceType) -> bool | None:
    """True / False by the Bundle resolution rules; None when this reference cannot be judged here."""
    if reference.startswith("#"):
        return None
    version: str | None = None
    if reference.startswith(("urn:uuid:", "urn:oid:")):
        target = reference
    else:
        relative = _RELATIVE.match(reference)
        if relative is not None and is_resource_type(relative["type"]):
            if base is None:
                return None  # relative to an entry whose fullUrl is not RESTful: not resolvable by the rules
            target, version = f"{base}/{relative['type']}/{relative['id']}", relative["version"]
        else:
            absolute = _restful(reference, is_resource_type)
            if absolute is None:
                return None
            target, version = f"{absolute['base']}/{absolute['type']}/{absolute['id']}", absolute["version"]
            if target not in index and not any(url.startswith(absolute["base"] + "/") for url in index):
                return None  # another server's resource: nothing says it must be inside
    versions = index.get(target)
    if versions is None:
        return False
    return version is None or version in versions


def parameters_issues(parameters: dict[str, Any], is_resource_type: IsResourceType) -> list[Issue]:
    """A relative reference (``Type/id``) from one resource of a Parameters to another must name a resource
    the Parameters carries, as the reference validator resolves them (e.g. ``$member-match`` input)."""
    held: set[tuple[str, str]] = set()
    carried: list[tuple[str, dict[str, Any]]] = []
    for where, resource in _parameter_resources(parameters.get("parameter"), "Parameters.parameter"):
        carried.append((where, resource))
        if isinstance(resource.get("id"), str):
            held.add((str(resource.get("resourceType")), resource["id"]))
    if len(carried) < 2:
        return []
    issues = []
    for where, resource in carried:
        if resource.get("resourceType") == "Bundle":
            continue  # a Bundle resolves its own references
        for path, reference in _references(resource, where):
            relative = _RELATIVE.match(reference)
            if relative is not None and is_resource_type(relative["type"]) \
                    and (relative["type"], relative["id"]) not in held:
                issues.append(Issue("error", "invalid", f"Reference '{reference}' does not resolve to a resource of "
                                    "this Parameters", path))
    return issues


def _parameter_resources(parameters: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if not isinstance(parameters, list):
        return
    for n, parameter in enumerate(parameters):
        if not isinstance(parameter, dict):
            continue
        here = f"{where}[{n}]"
        if isinstance(parameter.get("resource"), dict):
            yield f"{here}.resource", parameter["resource"]
        yield from _parameter_resources(parameter.get("part"), f"{here}.part")
