"""The one place where errors become HTTP responses with an OperationOutcome (house style §8)."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.negotiation import MEDIA_TYPE, MEDIA_TYPES, is_pretty, preferred_format
from fhir_server.errors import FhirError
from fhir_server.formats import resource_to_xml
from fhir_server.i18n import DEFAULT, Language, choose, msg
from fhir_server.i18n.outcome import language_headers, localised_outcome
from fhir_server.jsonio import dumps
from fhir_server.storage.protocols import StoreError

log = logging.getLogger(__name__)

_HTTP_CATEGORY = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                  405: "method_not_allowed", 406: "not_acceptable", 413: "too_large",
                  415: "unsupported_media_type", 422: "unprocessable"}


def default_language(request: Request | None) -> Language:
    """The server's ``default_language`` setting (English without a request or before start-up)."""
    app = request.scope.get("app") if request is not None else None  # a bare Request (tests) has none
    services = getattr(getattr(app, "state", None), "services", None)
    settings = getattr(services, "settings", None)
    lang: Language = getattr(settings, "default_language", DEFAULT)
    return lang


def answer_language(request: Request | None) -> Language:
    """The language of an error answer: the request's ``Accept-Language`` (docs/languages.md). Only
    errors ask, so the header is never parsed on the way to a 200."""
    default = default_language(request)
    return default if request is None else choose(request.headers.get("accept-language"), default)


def error_response(exc: FhirError, request: Request | None = None) -> Response:
    """The OperationOutcome of ``exc`` in the format and language the request negotiated (JSON without
    a request, or when the request accepts neither JSON nor XML)."""
    outcome, lang = localised_outcome(exc.issues, answer_language(request))
    headers = {**exc.headers, **language_headers(lang)}
    if request is not None and preferred_format(request) == "xml":
        try:
            body = resource_to_xml(outcome, pretty=is_pretty(request))
            return Response(body, status_code=exc.status, media_type=MEDIA_TYPES["xml"], headers=headers)
        except FhirError:
            pass  # diagnostics echoing input XML 1.0 cannot carry: the JSON form carries everything
    return Response(dumps(outcome), status_code=exc.status, media_type=MEDIA_TYPE, headers=headers)


async def _fhir_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FhirError)
    return error_response(exc, request)


async def _store_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StoreError)
    return error_response(FhirError(exc.category, exc.message), request)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    category = _HTTP_CATEGORY.get(exc.status_code, "invalid")
    message: str
    if exc.status_code == 404:
        message = msg("http.no_endpoint", path=request.url.path)
    elif exc.status_code == 405:
        message = msg("http.method_not_allowed", method=request.method, path=request.url.path)
    else:
        message = str(exc.detail)
    return error_response(FhirError(category, message), request)


async def _validation_error(request: Request, exc: Exception) -> Response:
    return error_response(FhirError("invalid", msg("http.malformed_request", detail=str(exc))), request)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(FhirError("fault", msg("http.internal_error")), request)


def install(app: FastAPI) -> None:
    app.add_exception_handler(FhirError, _fhir_error)
    app.add_exception_handler(StoreError, _store_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
