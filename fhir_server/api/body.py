"""Request bodies: size limit (413), UTF-8 BOM, JSON or FHIR XML parsing (400)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from fhir_server.api.negotiation import is_xml
from fhir_server.errors import FhirError
from fhir_server.formats import resource_from_xml
from fhir_server.i18n import msg
from fhir_server.jsonio import BOM, loads


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise FhirError("too_large", msg("http.body_too_large_declared", size=declared, limit=limit))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise FhirError("too_large", msg("http.body_too_large", limit=limit))
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int) -> Any:
    """The body as the server's JSON value: JSON as sent, FHIR XML converted to the same dicts (a body
    without Content-Type is XML when it starts with ``<``)."""
    raw = await read_body(request, limit)
    if not raw.strip():
        raise FhirError("invalid", msg("http.body_empty"), code="structure")
    ctype = request.headers.get("content-type")
    if is_xml(ctype) if ctype is not None else raw.removeprefix(BOM).lstrip().startswith(b"<"):
        return resource_from_xml(raw)
    try:
        return loads(raw)
    except RecursionError as exc:
        raise FhirError("invalid", msg("json.too_deep"), code="structure") from exc
    except ValueError as exc:
        raise FhirError("invalid", msg("json.invalid", detail=str(exc)), code="structure",
                        expression=getattr(exc, "expression", None)) from exc  # jsonio.JsonInputError says where
