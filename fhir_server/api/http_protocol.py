"""The HTTP/1.1 protocol ``kzfhir serve`` runs: uvicorn's httptools protocol plus what it lacks
(issue 12; docs/limits.md).

uvicorn times out idle keep-alive connections only; a client that opens a connection and trickles
its headers (slowloris) or pauses inside a body is held forever. Here:

- ``header_timeout``: the request line and headers must be complete this long after the
  connection opens (or, on a kept-alive connection, after the next request's first byte): 408;
- ``body_timeout``: a body may pause at most this long between two chunks: 408, and the
  application sees the client as disconnected;
- ``max_header_bytes``: a larger request line + headers is 431 (RFC 6585 §5);
- ``max_connections``: one more connection is answered 503 with ``Retry-After`` and closed;
- every answer the server gives on its own (these, and a request it cannot parse, 400) is an
  OperationOutcome with one log line, not uvicorn's ``text/plain`` page.

And one speed rule (issue 20): uvicorn writes a response's head and its body with two ``write``
calls, each a ``send(2)`` on an idle socket; a read by id spent a third of its CPU in those two
calls. :class:`_CoalescingTransport` holds what one turn of the event loop writes and hands it to
the socket once, at the end of that turn, so a head and its body leave in one segment.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from fhir_server.api.middleware import MEDIA_TYPE, outcome_body
from fhir_server.config import Settings
from fhir_server.i18n import DEFAULT, Language, msg

log = logging.getLogger("kzfhir.http")


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class _CoalescingTransport:
    """The connection's transport, with the writes of one event-loop turn sent together.

    Order is kept (one buffer, flushed before anything that could let other bytes pass: close,
    ``write_eof``, the end of the turn); flow control stays the real transport's, which sees every
    byte within the same turn.
    """

    __slots__ = ("_held", "_loop", "_pending", "_transport")
    #: more than this is handed on at once, so the real transport's flow control (pause_writing) sees a
    #: streamed answer (an NDJSON file, a large Bundle) as it is written, not at the end of the turn
    HOLD_AT_MOST = 65_536

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._held = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))
        self._held += len(data)
        if self._held > self.HOLD_AT_MOST:
            self.flush()

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pending = self._pending
        if not pending:
            return
        self._pending, self._held = [], 0
        if self._transport.is_closing():
            return
        self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._pending, self._held = [], 0
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, pause/resume_reading …
        return getattr(self._transport, name)


class FhirHttpProtocol(HttpToolsProtocol):
    header_timeout = 10.0
    body_timeout = 30.0
    max_header_bytes = 65_536
    max_connections = 1000
    #: its answers precede any header, so they are in the server's default language (docs/languages.md)
    language: Language = DEFAULT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._in_body = False

    # -- connection --
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
        if len(self.connections) > self.max_connections:
            self._refuse(503, "transient", msg("http.too_many_connections", limit=self.max_connections),
                         b"retry-after: 1\r\n")
            return
        self._arm(self.header_timeout, self._header_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._timer is None and not self._in_body and (self.cycle is None or self.cycle.response_complete):
            self._arm(self.header_timeout, self._header_timed_out)  # a kept-alive connection's next request
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # the request is served as plain HTTP/1.1: a server may ignore an upgrade (RFC 9110 §7.8)
        except httptools.HttpParserError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, _Refused):
                self._refuse(cause.status, cause.code, cause.message)
            else:
                self._refuse(400, "structure", msg("http.bad_http", detail=str(exc)[:200]))

    # -- parser callbacks --
    def on_message_begin(self) -> None:
        self._header_bytes = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        self._in_body = True
        # a request without a body (a GET, most reads) completes in this same parser call: no timer for it
        if any(name in (b"content-length", b"transfer-encoding") for name, _ in self.headers):
            self._arm(self.body_timeout, self._body_timed_out)

    def on_body(self, body: bytes) -> None:
        self._arm(self.body_timeout, self._body_timed_out)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_body = False
        self._disarm()
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, "structure", msg)

    # -- helpers --
    def _count(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > self.max_header_bytes:
            raise _Refused(431, "too-costly", msg("http.headers_too_large", limit=self.max_header_bytes))

    def _arm(self, delay: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _header_timed_out(self) -> None:
        self._timer = None
        self._refuse(408, "timeout", msg("http.header_timeout", seconds=f"{self.header_timeout:g}"))

    def _body_timed_out(self) -> None:
        self._timer = None
        self._in_body = False
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.scope.setdefault("state", {})["refused_by_server"] = True
            started = cycle.response_started
            cycle.disconnected = True  # the application's receive() now returns http.disconnect
            cycle.message_event.set()
            if started:
                self._close("body timeout after the response started")
                return
        self._refuse(408, "timeout", msg("http.body_timeout", seconds=f"{self.body_timeout:g}"))

    def _refuse(self, status: int, code: str, message: str, extra: bytes = b"") -> None:
        """Answer on the server's own behalf and close the connection."""
        self._disarm()
        if self.transport is None or self.transport.is_closing():
            return
        body, lang = outcome_body(code, message, self.language)
        head = b"".join([STATUS_LINE[status], b"content-type: ", MEDIA_TYPE, b"\r\ncontent-length: ",
                         str(len(body)).encode(), b"\r\ncontent-language: ", lang.encode(),
                         b"\r\nconnection: close\r\n", extra, b"\r\n"])
        self.transport.write(head + body)
        self._close(f"{status} {message}")

    def _close(self, why: str) -> None:
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "-"
        log.warning("%s %s", client, why)
        self.transport.close()


def protocol_class(settings: Settings) -> type[FhirHttpProtocol]:
    """The protocol with this server's limits (uvicorn instantiates it once per connection)."""
    return type("KzfhirHttpProtocol", (FhirHttpProtocol,), {
        "header_timeout": settings.header_timeout, "body_timeout": settings.body_timeout,
        "max_header_bytes": settings.max_header_bytes, "max_connections": settings.max_connections,
        "language": settings.default_language})
