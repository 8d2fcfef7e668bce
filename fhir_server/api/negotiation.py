"""Content negotiation (FHIR R4 http.html §3.1.0.1.6-7): JSON or XML, ``_format``, ``_pretty``, 406/415.

The response format is ``_format`` when given (it overrides ``Accept``, http.html §3.1.0.1.7), else the
best ``Accept`` entry by quality, JSON on a tie or a wildcard. RDF (Turtle) is not produced (406).
"""

from __future__ import annotations

from typing import Literal

from starlette.requests import Request

from fhir_server.errors import FhirError
from fhir_server.i18n import msg

Format = Literal["json", "xml"]

FHIR_JSON = "application/fhir+json"
FHIR_XML = "application/fhir+xml"
JSON_PATCH = "application/json-patch+json"
MEDIA_TYPE = "application/fhir+json; charset=utf-8"
XML_MEDIA_TYPE = "application/fhir+xml; charset=utf-8"
MEDIA_TYPES: dict[Format, str] = {"json": MEDIA_TYPE, "xml": XML_MEDIA_TYPE}

_JSON_TYPES = frozenset({FHIR_JSON, "application/json", "application/json+fhir", "text/json"})
_XML_TYPES = frozenset({FHIR_XML, "application/xml", "application/xml+fhir", "text/xml"})
# http.html §3.1.0.1.7: these _format values SHALL be understood; "application/fhir xml" is what a "+"
# left unescaped in a query string decodes to.
_FORMAT_VALUES: dict[str, Format] = {
    "json": "json", **dict.fromkeys(_JSON_TYPES, "json"), "application/fhir json": "json",
    "xml": "xml", **dict.fromkeys(_XML_TYPES, "xml"), "application/fhir xml": "xml",
}
_WILDCARDS = frozenset({"*/*", "application/*", "text/*", ""})


def _media(value: str) -> str:
    return value.split(";")[0].strip().lower()


def _accepted(accept: str) -> Format | None:
    """The best format for an Accept header (JSON for a wildcard), None when it takes neither JSON nor XML."""
    best: tuple[float, int, Format] | None = None
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        media = media.lower()
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        fmt: Format | None = "json" if media in _JSON_TYPES or media in _WILDCARDS else (
            "xml" if media in _XML_TYPES else None)
        if fmt is None or quality <= 0:
            continue
        # Higher quality wins; at equal quality a named type beats a wildcard, then the earlier entry.
        rank = (quality, 0 if media in _WILDCARDS else 1, fmt)
        if best is None or rank[:2] > best[:2]:
            best = rank
    return None if best is None else best[2]


def response_format(request: Request) -> Format:
    """The negotiated response format; 406 when the client accepts neither JSON nor XML."""
    fmt = request.query_params.get("_format")
    if fmt is not None:
        chosen = _FORMAT_VALUES.get(_media(fmt))
        if chosen is None:
            raise FhirError("not_acceptable", msg("http.format_unsupported", format=fmt), code="not-supported")
        return chosen
    accept = request.headers.get("accept")
    if not accept:
        return "json"
    chosen = _accepted(accept)
    if chosen is None:
        raise FhirError("not_acceptable", msg("http.not_acceptable", accept=accept, json=FHIR_JSON, xml=FHIR_XML),
                        code="not-supported")
    return chosen


def preferred_format(request: Request) -> Format:
    """The format for an error response: the negotiated one, JSON when negotiation itself failed."""
    try:
        return response_format(request)
    except FhirError:
        return "json"


def check_accept(request: Request) -> None:
    """406 before any work when the client accepts neither JSON nor XML."""
    response_format(request)


def accept_ok(accept: str | None) -> bool:
    """True when a request without a query string gets JSON: the fast read path (api/fastpath.py)
    serves exactly those and leaves XML and 406 answers to the regular routes."""
    return not accept or _accepted(accept) == "json"


def is_xml(content_type: str) -> bool:
    return _media(content_type) in _XML_TYPES


def check_content_type(request: Request, *, patch: bool = False) -> None:
    ctype = request.headers.get("content-type")
    if ctype is None:
        return  # lenient: a body without Content-Type is read by its first character (api/body.py)
    media = _media(ctype)
    # a PATCH body is a JSON Patch, or a FHIRPath Patch: a Parameters resource (R4 fhirpatch.html)
    allowed = {JSON_PATCH} | _JSON_TYPES | _XML_TYPES if patch else _JSON_TYPES | _XML_TYPES
    if media not in allowed:
        message = msg("http.content_type_patch", content_type=ctype, patch=JSON_PATCH, json=FHIR_JSON,
                      xml=FHIR_XML) if patch else msg("http.content_type", content_type=ctype, json=FHIR_JSON,
                                                      xml=FHIR_XML)
        raise FhirError("unsupported_media_type", message, code="not-supported")


def check_patch_body(request: Request, body: object) -> None:
    """The PATCH body matches its Content-Type: a JSON Patch array for application/json-patch+json, a
    Parameters resource (FHIRPath Patch) for the FHIR media types (R4 http.html §3.1.0.6)."""
    ctype = request.headers.get("content-type")
    json_patch = ctype is None or _media(ctype) == JSON_PATCH
    if json_patch and not isinstance(body, list):
        raise FhirError("invalid", msg("patch.json_patch_array", patch=JSON_PATCH, json=FHIR_JSON), code="structure")
    if not json_patch and not (isinstance(body, dict) and body.get("resourceType") == "Parameters"):
        raise FhirError("invalid", msg("patch.fhirpath_parameters", patch=JSON_PATCH), code="structure")


def is_pretty(request: Request) -> bool:
    return request.query_params.get("_pretty") == "true"
