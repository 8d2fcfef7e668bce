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
from fhir_server.jsonio import dumps
from fhir_server.storage.protocols import StoreError

log = logging.getLogger(__name__)

_HTTP_CATEGORY = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                  405: "method_not_allowed", 406: "not_acceptable", 413: "too_large",
                  415: "unsupported_media_type", 422: "unprocessable"}


def error_response(exc: FhirError, request: Request | None = None) -> Response:
    """The OperationOutcome of ``exc`` in the format the request negotiated (JSON without a request,
    or when the request accepts neither JSON nor XML)."""
    outcome = exc.outcome()
    if request is not None and preferred_format(request) == "xml":
        try:
            body = resource_to_xml(outcome, pretty=is_pretty(request))
            return Response(body, status_code=exc.status, media_type=MEDIA_TYPES["xml"], headers=exc.headers)
        except FhirError:
            pass  # diagnostics echoing input XML 1.0 cannot carry: the JSON form carries everything
    return Response(dumps(outcome), status_code=exc.status, media_type=MEDIA_TYPE, headers=exc.headers)


async def _fhir_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FhirError)
    return error_response(exc, request)


async def _store_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StoreError)
    return error_response(FhirError(exc.category, exc.message), request)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    category = _HTTP_CATEGORY.get(exc.status_code, "invalid")
    message = "no such endpoint: " + request.url.path if exc.status_code == 404 else str(exc.detail)
    return error_response(FhirError(category, message), request)


async def _validation_error(request: Request, exc: Exception) -> Response:
    return error_response(FhirError("invalid", f"malformed request: {exc}"), request)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(FhirError("fault", "internal server error; the incident was logged"), request)


def install(app: FastAPI) -> None:
    app.add_exception_handler(FhirError, _fhir_error)
    app.add_exception_handler(StoreError, _store_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
