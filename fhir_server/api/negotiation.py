"""Content negotiation (FHIR R4 http.html §3.1.0.1.6-7): JSON only, ``_format``, ``_pretty``, 406/415."""

from __future__ import annotations

from starlette.requests import Request

from fhir_server.errors import FhirError

FHIR_JSON = "application/fhir+json"
JSON_PATCH = "application/json-patch+json"
MEDIA_TYPE = "application/fhir+json; charset=utf-8"

_JSON_FORMATS = {"json", FHIR_JSON, "application/json", "application/json+fhir", "text/json"}
_ACCEPTABLE = {FHIR_JSON, "application/json", "application/json+fhir", "*/*", "application/*", "text/json"}


def check_accept(request: Request) -> None:
    """406 for anything but JSON: this server does not produce FHIR XML or RDF (docs/conformance.md)."""
    fmt = request.query_params.get("_format")
    if fmt is not None:
        if fmt.split(";")[0].strip() not in _JSON_FORMATS:
            raise FhirError("not_acceptable", f"_format {fmt!r} is not supported; use json", code="not-supported")
        return
    accept = request.headers.get("accept")
    if accept_ok(accept):
        return
    raise FhirError("not_acceptable", f"cannot produce {accept!r}; this server speaks {FHIR_JSON}",
                    code="not-supported")


def accept_ok(accept: str | None) -> bool:
    if not accept:
        return True
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in _ACCEPTABLE or media == "":
            return True
    return False


def check_content_type(request: Request, *, patch: bool = False) -> None:
    ctype = request.headers.get("content-type")
    if ctype is None:
        return  # lenient: a body without Content-Type is read as JSON
    media = ctype.split(";")[0].strip().lower()
    allowed = {JSON_PATCH} if patch else {FHIR_JSON, "application/json", "application/json+fhir", "text/json"}
    if media not in allowed:
        wanted = JSON_PATCH if patch else FHIR_JSON
        raise FhirError("unsupported_media_type", f"Content-Type {ctype!r} is not supported here; send {wanted}",
                        code="not-supported")


def is_pretty(request: Request) -> bool:
    return request.query_params.get("_pretty") == "true"
