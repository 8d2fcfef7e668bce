"""Does an answer disclose hidden data? "Hidden means absent" (AC-12; docs/security.md §3): a caller
without consent must learn nothing of the patient's data, neither the resources, nor a count, nor an
error text naming them, nor a different answer from the one it gets when nothing exists.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote

import httpx

from conformance.http import json_body

__all__ = ["differs", "hidden_in", "leaked", "request_text", "resources_in", "total_of"]


def resources_in(node: Any) -> Iterator[dict[str, Any]]:
    """Every resource in a body: the body itself, Bundle entries, nested Bundles (batch responses,
    searches inside them), ``contained`` and entry ``response.outcome``, at any depth."""
    if not isinstance(node, dict):
        return
    if isinstance(node.get("resourceType"), str):
        yield node
    for key in ("entry", "contained"):
        for child in node.get(key) or []:
            if isinstance(child, dict):
                yield from resources_in(child.get("resource") if key == "entry" else child)
                if key == "entry":
                    yield from resources_in((child.get("response") or {}).get("outcome"))


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value
            elif key not in ("entry", "contained"):  # nested resources are judged on their own
                yield from _references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _references(value)


def hidden_in(body: Any, hidden: set[str], patient_ref: str) -> list[str]:
    """``Type/id`` of each resource in ``body`` that is hidden: one of ``hidden``, or one referring to the
    patient (their data the kit does not know of). OperationOutcomes are not data."""
    found: list[str] = []
    for resource in resources_in(body):
        kind = resource.get("resourceType")
        if kind in ("OperationOutcome", "Bundle"):
            continue
        ref = f"{kind}/{resource.get('id')}"
        refers = any(r == patient_ref or r.endswith("/" + patient_ref) for r in _references(resource))
        if ref in hidden or refers:
            found.append(ref)
    return list(dict.fromkeys(found))


def request_text(response: httpx.Response) -> str:
    """What the caller itself sent (URL, decoded, and body): values in it are not disclosed to it."""
    request = response.request
    return unquote(str(request.url)) + " " + request.content.decode("utf-8", "replace")


def leaked(response: httpx.Response, markers: Mapping[str, str]) -> list[str]:
    """Labels of the hidden values (patient id, IIN, family name, resource ids ...) that the answer
    contains although the request did not: an error text or a link naming the patient is a leak."""
    sent = request_text(response)
    text = unquote(response.text) + " " + " ".join(f"{k}: {v}" for k, v in response.headers.items()
                                                   if k.lower() not in ("date", "x-request-id"))
    return [label for label, value in markers.items() if value and value in text and value not in sent]


def total_of(response: httpx.Response) -> int | None:
    body = json_body(response)
    total = body.get("total") if body else None
    return total if isinstance(total, int) else None


def _entries(response: httpx.Response) -> int:
    body = json_body(response) or {}
    return len([e for e in body.get("entry") or [] if isinstance(e, dict)])


def differs(hidden: httpx.Response, absent: httpx.Response) -> str | None:
    """How the answer when a hidden match exists differs from the answer when nothing matches (None:
    alike). Compared: status, ``Bundle.total`` and the number of entries. Texts are not compared: they
    may echo the request; ``leaked`` judges them."""
    if hidden.status_code != absent.status_code:
        return f"HTTP {hidden.status_code} with a hidden match, {absent.status_code} with none"
    if total_of(hidden) != total_of(absent):
        return f"total {total_of(hidden)} with a hidden match, {total_of(absent)} with none"
    if _entries(hidden) != _entries(absent):
        return f"{_entries(hidden)} entries with a hidden match, {_entries(absent)} with none"
    return None
