"""JSON Patch (RFC 6902) applied to a resource, for the patch interaction (FHIR R4 http.html §3.1.0.6)."""

from __future__ import annotations

import copy
from typing import Any

from fhir_server.errors import FhirError

_OPS = ("add", "remove", "replace", "move", "copy", "test")


def _tokens(pointer: Any, where: str) -> list[str]:
    if not isinstance(pointer, str) or (pointer and not pointer.startswith("/")):
        raise FhirError("invalid", f"{where}: a JSON pointer must be a string starting with '/'", code="invalid")
    if pointer == "":
        return []
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _index(container: list[Any], token: str, where: str, *, for_add: bool) -> int:
    if token == "-" and for_add:
        return len(container)
    if not (token.isascii() and token.isdigit()) or (len(token) > 1 and token.startswith("0")):
        raise FhirError("invalid", f"{where}: {token!r} is not an array index", code="invalid")
    i = int(token)
    if i > len(container) or (i == len(container) and not for_add):
        raise FhirError("unprocessable", f"{where}: index {i} is out of range", code="processing")
    return i


def _parent(doc: Any, tokens: list[str], where: str) -> Any:
    node = doc
    for t in tokens[:-1]:
        if isinstance(node, dict) and t in node:
            node = node[t]
        elif isinstance(node, list):
            node = node[_index(node, t, where, for_add=False)]
        else:
            raise FhirError("unprocessable", f"{where}: path does not exist", code="processing")
    return node


def _get(doc: Any, tokens: list[str], where: str) -> Any:
    if not tokens:
        return doc
    parent = _parent(doc, tokens, where)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise FhirError("unprocessable", f"{where}: path does not exist", code="processing")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, where, for_add=False)]
    raise FhirError("unprocessable", f"{where}: path does not exist", code="processing")


def _remove(doc: Any, tokens: list[str], where: str) -> Any:
    if not tokens:
        raise FhirError("unprocessable", f"{where}: cannot remove the whole resource", code="processing")
    parent = _parent(doc, tokens, where)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise FhirError("unprocessable", f"{where}: path does not exist", code="processing")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, where, for_add=False))
    raise FhirError("unprocessable", f"{where}: path does not exist", code="processing")


def _add(doc: Any, tokens: list[str], value: Any, where: str, *, replace: bool) -> Any:
    if not tokens:
        return value
    parent = _parent(doc, tokens, where)
    last = tokens[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise FhirError("unprocessable", f"{where}: path does not exist", code="processing")
        parent[last] = value
    elif isinstance(parent, list):
        i = _index(parent, last, where, for_add=not replace)
        if replace:
            parent[i] = value
        else:
            parent.insert(i, value)
    else:
        raise FhirError("unprocessable", f"{where}: path does not exist", code="processing")
    return doc


def apply_patch(document: dict[str, Any], patch: Any) -> Any:
    """Apply ``patch`` to a deep copy of ``document``; the original is never changed."""
    if not isinstance(patch, list):
        raise FhirError("invalid", "a JSON Patch document must be a JSON array of operations", code="structure")
    doc: Any = copy.deepcopy(document)
    for n, op in enumerate(patch):
        where = f"patch operation {n}"
        if not isinstance(op, dict) or op.get("op") not in _OPS:
            raise FhirError("invalid", f"{where}: 'op' must be one of {', '.join(_OPS)}", code="invalid")
        kind = op["op"]
        path = _tokens(op.get("path"), where)
        if kind in ("add", "replace", "test") and "value" not in op:
            raise FhirError("invalid", f"{where}: '{kind}' needs a 'value'", code="required")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]), where, replace=False)
        elif kind == "replace":
            doc = _add(doc, path, copy.deepcopy(op["value"]), where, replace=True)
        elif kind == "remove":
            _remove(doc, path, where)
        elif kind == "test":
            if _get(doc, path, where) != op["value"]:
                raise FhirError("unprocessable", f"{where}: test failed", code="processing")
        else:
            source = _tokens(op.get("from"), where)
            value = _get(doc, source, where)
            if kind == "move":
                if path[: len(source)] == source and len(path) > len(source):
                    raise FhirError("invalid", f"{where}: cannot move a value into itself", code="invalid")
                _remove(doc, source, where)
            doc = _add(doc, path, copy.deepcopy(value), where, replace=False)
    return doc
