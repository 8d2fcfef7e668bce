"""Parsing of batch/transaction entries (FHIR R4 http.html §3.1.0.11)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from fhir_server.errors import FhirError
from fhir_server.interactions.base import ID_RE, Services
from fhir_server.jsonio import loads

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


@dataclass(slots=True)
class Entry:
    index: int
    method: str
    url: str
    resource_type: str | None
    resource_id: str | None = None
    version: str | None = None
    criteria: str | None = None  # query part of a conditional or search URL
    operation: str | None = None  # _history, _search, $op: not a plain instance/type URL
    resource: dict[str, Any] | None = None
    patch: Any = None
    full_url: str | None = None
    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: str | None = None
    if_none_exist: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"Bundle.entry[{self.index}]"


def _fail(entry_index: int, message: str, code: str = "invalid", category: str = "invalid") -> FhirError:
    return FhirError(category, f"entry {entry_index}: {message}", code=code,
                     expression=f"Bundle.entry[{entry_index}].request")


def _split_url(url: str, base_url: str) -> tuple[str, str | None]:
    """The path relative to the base and the query. Only the path can name another server: a query may
    well hold URLs (``identifier=http://...|x``, ``code=http://loinc.org|...``)."""
    path, sep, query = url.partition("?")
    if base_url and path.startswith(base_url + "/"):
        path = path[len(base_url) + 1:]
    elif "://" in path:
        raise FhirError("invalid", f"request.url {url[:200]!r} is not on this server ({urlsplit(path).netloc})",
                        code="invalid")
    return path.lstrip("/"), (query if sep else None)


def _binary_patch(resource: dict[str, Any], index: int) -> Any:
    """A PATCH entry's patch: a FHIRPath Patch (a Parameters resource, R4 fhirpatch.html) or a JSON Patch
    carried in a Binary, the way R4 transactions carry JSON Patch bodies."""
    if resource.get("resourceType") == "Parameters":
        return resource
    if resource.get("resourceType") != "Binary" or resource.get("contentType") != "application/json-patch+json":
        raise _fail(index, "a PATCH entry needs a Parameters resource (FHIRPath Patch) or a Binary with "
                    "contentType application/json-patch+json (JSON Patch)")
    try:
        return loads(base64.b64decode(resource.get("data", ""), validate=True))
    except (binascii.Error, ValueError) as exc:
        raise _fail(index, f"the Binary data is not a base64 JSON Patch ({exc})") from exc


def parse_entry(services: Services, index: int, raw: Any, base_url: str) -> Entry:
    if not isinstance(raw, dict):
        raise _fail(index, "an entry must be a JSON object", "structure")
    request = raw.get("request")
    if not isinstance(request, dict):
        raise _fail(index, "entry.request is required in a batch or transaction", "required")
    method, url = request.get("method"), request.get("url")
    if method not in METHODS or not isinstance(url, str) or not url:
        raise _fail(index, "entry.request needs a method (GET, HEAD, POST, PUT, PATCH, DELETE) and a url", "required")
    try:
        path, query = _split_url(url, base_url)
    except FhirError as exc:
        raise _fail(index, exc.message, "invalid") from exc
    segments = [s for s in path.split("/") if s]
    entry = Entry(index, method, url, segments[0] if segments else None, criteria=query,
                  full_url=raw.get("fullUrl"), if_match=request.get("ifMatch"),
                  if_none_match=request.get("ifNoneMatch"), if_modified_since=request.get("ifModifiedSince"),
                  if_none_exist=request.get("ifNoneExist"))
    if entry.resource_type is not None and not entry.resource_type.startswith(("$", "_")):
        if not services.definitions.is_resource_type(entry.resource_type):
            raise _fail(index, f"unknown resource type {entry.resource_type!r}", "not-supported", "not_found")
    else:
        entry.operation = entry.resource_type
        entry.resource_type = None
    if len(segments) >= 2:
        if segments[1].startswith(("$", "_")):
            entry.operation = "/".join(segments[1:])
        else:
            entry.resource_id = segments[1]
            if not ID_RE.fullmatch(segments[1]):
                raise _fail(index, f"invalid id {segments[1]!r}", "value")
            if len(segments) == 4 and segments[2] == "_history":
                entry.version = segments[3]
            elif len(segments) > 2:
                entry.operation = "/".join(segments[2:])
    resource = raw.get("resource")
    if method in ("POST", "PUT") and entry.operation is None:
        if not isinstance(resource, dict):
            raise _fail(index, f"a {method} entry needs a resource", "required")
        entry.resource = resource
    if method == "PATCH":
        if not isinstance(resource, dict):
            raise _fail(index, "a PATCH entry needs a Parameters (FHIRPath Patch) or a Binary (JSON Patch)",
                        "required")
        entry.patch = _binary_patch(resource, index)
    return entry
