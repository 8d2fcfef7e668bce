"""The ASGI layer around the whole application (issue 12; docs/limits.md).

- every request gets an id (``X-Request-Id``, ``request.state.request_id``) and every failed one
  exactly one log line with it; a client that went away is a line, never a traceback;
- ``Content-Encoding: gzip`` / ``deflate`` request bodies are decompressed as they arrive, with
  ``max_body_bytes`` applied to the decompressed bytes (a gzip bomb is 413 after at most that much
  output); any other coding is 415 (RFC 9110 §8.4.1, §15.5.16);
- responses are gzip-compressed when the client accepts it (``api/compression.py``);
- at most ``max_requests_per_client`` requests of one client address run at once (429 beyond);
- whatever escapes the application is a 500 OperationOutcome, not the ASGI server's text page;
- once the server falls idle, freed heap is handed back to the system (glibc ``malloc_trim``):
  without it RSS stayed at its peak after a load (issue 12: 1.4 GB after the load stopped).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import time
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from fhir_server.api.compression import Compression
from fhir_server.config import Settings
from fhir_server.errors import FhirError
from fhir_server.i18n import DEFAULT, Language, choose, msg
from fhir_server.i18n.outcome import localised_outcome
from fhir_server.jsonio import dumps
from fhir_server.security.context import next_request_id
from fhir_server.validation.issues import Issue

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("kzfhir.request")
MEDIA_TYPE = b"application/fhir+json; charset=utf-8"
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def _libc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
        return trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


_MALLOC_TRIM = _libc_trim()
IDLE_TRIM_SECONDS = 1.0


def outcome_body(code: str, message: str, lang: Language = DEFAULT) -> tuple[bytes, Language]:
    """The OperationOutcome of one error, in ``lang`` when ``message`` has a catalogue key."""
    outcome, used = localised_outcome([Issue("error", code, message)], lang)
    return dumps(outcome), used


def scope_language(scope: Scope, default: Language) -> Language:
    """The answer language of a request the application never saw (docs/languages.md)."""
    header = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"accept-language"), None)
    return choose(header, default)


async def send_outcome(send: Send, status: int, code: str, message: str,
                       headers: list[tuple[bytes, bytes]] | None = None, lang: Language = DEFAULT) -> None:
    body, used = outcome_body(code, message, lang)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", MEDIA_TYPE), (b"content-length", str(len(body)).encode()),
                            (b"content-language", used.encode()), (b"vary", b"Accept-Language"),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


async def client_gone(request: Request, exc: Exception) -> Response:
    """Exception handler for ``ClientDisconnect``: nobody is listening, so no traceback and no
    body; the middleware writes the one log line."""
    request.state.client_gone = True
    return Response(status_code=499)


class _Decoder:
    """Decompresses one request body, never producing more than ``limit`` bytes."""

    def __init__(self, coding: str, limit: int) -> None:
        self.coding = coding
        self.room = limit
        self.limit = limit
        self.inflater = zlib.decompressobj(_WBITS[coding])
        self.seen_input = False

    def feed(self, data: bytes, more: bool) -> bytes:
        self.seen_input = self.seen_input or bool(data)
        try:
            out = self.inflater.decompress(data, self.room + 1)
            if len(out) > self.room:
                raise FhirError("too_large", msg("http.body_decompressed_too_large", coding=self.coding,
                                                   limit=self.limit))
            self.room -= len(out)
            if not more and self.seen_input:
                out += self.inflater.flush()
                if not self.inflater.eof or self.inflater.unused_data:
                    raise zlib.error("the stream is truncated or has data after its end")
        except zlib.error as exc:
            raise FhirError("invalid", msg("http.body_bad_coding", coding=self.coding, detail=str(exc)),
                            code="structure") from None
        return out


def _decoding(scope: Scope, receive: Receive, limit: int) -> tuple[Scope, Receive]:
    """The scope and receive the application sees: decompressed, without Content-Encoding."""
    codings = [v.decode("latin-1").strip().lower() for k, v in scope["headers"] if k == b"content-encoding"]
    codings = [c for part in codings for c in part.split(",") if c.strip() not in ("", "identity")]
    if not codings:
        return scope, receive
    if len(codings) > 1 or codings[0].strip() not in _WBITS:
        raise FhirError("unsupported_media_type", msg("http.content_encoding", coding=", ".join(codings)),
                        code="not-supported")
    decoder = _Decoder(codings[0].strip(), limit)
    headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-encoding", b"content-length")]

    async def decoded() -> Message:
        message = await receive()
        if message["type"] == "http.request":
            more = bool(message.get("more_body", False))
            message = {**message, "body": decoder.feed(message.get("body", b""), more)}
        return message

    return {**scope, "headers": headers}, decoded


class Hardened:
    """The outermost ASGI application (wraps ``FastReads``), see the module docstring."""

    def __init__(self, app: Any, settings: Settings) -> None:
        self.inner = app
        self.wrapped: App = Compression(app, settings.compress_min_bytes, level=5) \
            if settings.compress_responses else app
        self.max_body = settings.max_body_bytes
        self.per_client = settings.max_requests_per_client
        self.default_language: Language = settings.default_language
        self.running: dict[str, int] = {}
        self.in_flight = 0
        self.trim_pending = False

    @property
    def app(self) -> Any:  # the FastAPI application, as FastReads.app
        return self.inner.app

    @property
    def router(self) -> Any:  # what tests and the lifespan reach through FastReads
        return self.inner.router

    @property
    def state(self) -> Any:
        return self.inner.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.wrapped(scope, receive, send)
            return
        # The operator layer (api/operator.py, always outside this one) chose the request id, echoes it in the
        # response and records the status in its box; the same id is in the log line and the AuditEvents.
        state = scope.setdefault("state", {})
        request_id: str = state.get("request_id") or next_request_id()
        status: list[int] = state.setdefault("response_status", [0])
        started = time.perf_counter()
        # HEAD is GET without the body (RFC 9110 §9.3.2; FHIR R4 http.html: read and search support HEAD):
        # the same route, access decision, audit record and headers (ETag, Last-Modified, Content-Length)
        head = scope.get("method") == "HEAD"

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        through: Send = without_body if head else send
        client = (scope.get("client") or ("-", 0))[0]
        if self.per_client and self.running.get(client, 0) >= self.per_client:
            await send_outcome(through, 429, "throttled", msg("http.too_many_requests", limit=self.per_client),
                               [(b"retry-after", b"1")], scope_language(scope, self.default_language))
            self._log(scope, status[0], started, request_id, "throttled")
            return
        self.running[client] = self.running.get(client, 0) + 1
        self.in_flight += 1
        note = ""
        try:
            inner_scope, inner_receive = _decoding(scope, receive, self.max_body)
            if head:
                inner_scope = {**inner_scope, "method": "GET"}
            await self.wrapped(inner_scope, inner_receive, through)
        except FhirError as exc:  # refused before the application ran (415 for an unknown coding)
            if not status[0]:
                await send_outcome(through, exc.status, exc.issues[0].code, exc.message,
                                   lang=scope_language(scope, self.default_language))
        except ClientDisconnect:
            note = "client disconnected"
        except Exception as exc:  # already logged where it was handled (api/errors.py), or a server fault
            note = f"{type(exc).__name__}: {str(exc)[:200]}"
            if not status[0]:
                await send_outcome(through, 500, "exception", msg("http.internal_error"),
                                   lang=scope_language(scope, self.default_language))
        finally:
            self.in_flight -= 1
            self._trim_when_idle()
            left = self.running.get(client, 1) - 1
            if left > 0:
                self.running[client] = left
            else:
                self.running.pop(client, None)
        if state.get("client_gone"):
            note = "client disconnected"
        if status[0] >= 400 or note:
            self._log(scope, status[0], started, request_id, note)

    def _trim_when_idle(self) -> None:
        if self.in_flight or self.trim_pending or _MALLOC_TRIM is None:
            return
        self.trim_pending = True
        loop = asyncio.get_running_loop()

        def trim() -> None:
            self.trim_pending = False
            if not self.in_flight and _MALLOC_TRIM is not None:
                loop.run_in_executor(None, _MALLOC_TRIM, 0)

        loop.call_later(IDLE_TRIM_SECONDS, trim)

    @staticmethod
    def _log(scope: Scope, status: int, started: float, request_id: str, note: str) -> None:
        if scope.get("state", {}).get("refused_by_server"):
            return  # the HTTP protocol already wrote this request's line (api/http_protocol.py)
        path = scope.get("path", "")[:200]
        log.warning("%s %s %s %s %.1fms%s", request_id, status or "-", scope.get("method"), path,
                    (time.perf_counter() - started) * 1000, f" ({note})" if note else "")
