"""The HTTP client of rest-hook notifications: HTTP/1.1 over asyncio streams, keep-alive connections per
origin, responses parsed by httptools (the parser the server itself runs on).

Why not httpx, which the rest of the server uses for outgoing calls: with the notifications of many
subscriptions going out side by side (jobs/worker.py ``concurrency``), httpx's connection pool spent
about 2.7 ms of CPU per POST checking every pooled connection on every request (httpcore
``_assign_requests_to_connections`` / ``has_expired``), more than the rest of a notification's delivery;
this client costs well under a tenth of it (docs/subscriptions.md, Bench). A notification is one small
POST (or PUT) whose answer only matters by its status, so the client is small:

* ``http`` and ``https`` (TLS verified against the system's trust store; ``SSL_CERT_FILE`` /
  ``SSL_CERT_DIR`` override it, as for OpenSSL), a request line, ``Host``, ``Content-Length``, the
  channel's headers; the answer's status, its body read (by length, chunked, or to the end) and dropped;
* a connection is reused while the server keeps it alive and it was idle less than ``KEEPALIVE`` seconds;
  a reused one that turns out closed by the server before answering is retried once on a new one (a
  notification carries its ``Idempotency-Key``);
* the subscription's timeout bounds the whole exchange (connect, send, answer);
* an endpoint reached through a proxy (``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``NO_PROXY`` in the
  environment) goes through httpx, which speaks to proxies.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import time
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httptools
import httpx

KEEPALIVE = 5.0  # seconds an idle connection is kept (httpx's default too)
MAX_IDLE = 20  # idle connections kept per origin
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_CHUNK = 65536


class HookError(Exception):
    """The endpoint could not be reached or did not answer in HTTP; the name says how (delivery.py)."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


@dataclass(slots=True)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0

    def usable(self) -> bool:
        return (not self.writer.is_closing() and not self.reader.at_eof()
                and time.monotonic() - self.idle_since < KEEPALIVE)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


@dataclass(slots=True)
class _Answer:
    """What the response parser saw (httptools callbacks); an interim 1xx answer is skipped."""

    parser: Any = None
    status: int = 0
    headers_done: bool = False
    complete: bool = False
    framed: bool = False  # Content-Length or chunked: the body ends without the connection closing
    keep: bool = False  # the connection may carry the next request (read while the parser knows it)

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"content-length" or (lowered == b"transfer-encoding" and b"chunked" in value.lower()):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.headers_done = True
        self.status = int(self.parser.get_status_code())

    def on_message_complete(self) -> None:
        if 100 <= self.status < 200:  # interim (100 Continue, 103 Early Hints): the answer follows
            self.headers_done = self.framed = False
            return
        self.keep = bool(self.parser.should_keep_alive())
        self.complete = True


class HookClient:
    """One per delivery channel; its connections belong to the event loop that opened them."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._tls: ssl.SSLContext | None = None
        self._proxied: httpx.AsyncClient | None = None
        self._proxies: dict[tuple[str, str], bool] = {}

    async def request(self, method: str, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        """Send one request; the response's status code. Raises :class:`HookError`."""
        parts = urlsplit(url)
        scheme, host = parts.scheme.lower(), parts.hostname
        if scheme not in ("http", "https") or not host:
            raise HookError("InvalidURL", url)
        proxied = self._proxies.get((scheme, host))
        if proxied is None:  # the environment is read once per endpoint host, not per notification
            proxied = self._proxies[(scheme, host)] = _proxy_for(scheme, host)
        if proxied:
            return await self._via_proxy(method, url, body, headers, timeout)
        port = parts.port or (443 if scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        named = f"[{host}]" if ":" in host else host  # an IPv6 literal keeps its brackets
        authority = named if parts.port is None else f"{named}:{parts.port}"
        head = _head(method, target, authority, len(body), headers)
        origin = (scheme, host, port)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    connection, reused = await self._connection(origin)
                    try:
                        status, keep = await _exchange(connection, head + body)
                    except _Closed:
                        connection.close()
                        if reused:
                            continue  # the server closed an idle keep-alive connection: once more, on a new one
                        raise HookError("RemoteProtocolError", "the server closed the connection") from None
                    except BaseException:
                        connection.close()
                        raise
                    if keep:
                        self._release(origin, connection)
                    else:
                        connection.close()
                    return status
        except TimeoutError:
            raise HookError("Timeout", f"no answer within {timeout:g} s") from None
        except ssl.SSLError as exc:
            raise HookError("TLSError", str(exc)) from None
        except OSError as exc:
            raise HookError("ConnectError", str(exc)) from None

    async def _connection(self, origin: tuple[str, str, int]) -> tuple[_Connection, bool]:
        idle = self._idle.get(origin, [])
        while idle:
            connection = idle.pop()
            if connection.usable():
                return connection, True
            connection.close()
        scheme, host, port = origin
        tls = self._context() if scheme == "https" else None
        reader, writer = await asyncio.open_connection(host, port, ssl=tls, server_hostname=host if tls else None,
                                                       limit=_CHUNK)
        return _Connection(reader, writer), False

    def _release(self, origin: tuple[str, str, int], connection: _Connection) -> None:
        idle = self._idle.setdefault(origin, [])
        if len(idle) >= MAX_IDLE:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        idle.append(connection)

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()  # the system's CAs; SSL_CERT_FILE / SSL_CERT_DIR honoured
        return self._tls

    async def _via_proxy(self, method: str, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        if self._proxied is None or self._proxied.is_closed:
            self._proxied = httpx.AsyncClient(trust_env=True)
        try:
            r = await self._proxied.request(method, url, content=body, headers=headers, timeout=timeout)
        except httpx.HTTPError as exc:
            raise HookError(exc.__class__.__name__, str(exc)) from None
        return r.status_code

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
        if self._proxied is not None:
            await self._proxied.aclose()
            self._proxied = None


class _Closed(Exception):
    """The connection ended before a response began."""


def _proxy_for(scheme: str, host: str) -> bool:
    proxies = urllib.request.getproxies()
    return bool(proxies.get(scheme) or proxies.get("all")) and not urllib.request.proxy_bypass(host)


def _head(method: str, target: str, authority: str, length: int, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {authority}", f"Content-Length: {length}"]
    for name, value in headers.items():
        if not _TOKEN.match(name) or any(c in value for c in "\r\n\0"):
            raise HookError("InvalidHeader", name)
        if name.lower() not in ("host", "content-length", "transfer-encoding", "connection"):
            lines.append(f"{name}: {value}")
    try:
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    except UnicodeEncodeError:
        raise HookError("InvalidHeader", "a header value is not Latin-1") from None


async def _exchange(connection: _Connection, request: bytes) -> tuple[int, bool]:
    """Write the request, read the whole response: (status, whether the connection may be reused)."""
    try:
        connection.writer.write(request)
        await connection.writer.drain()
    except (ConnectionError, BrokenPipeError):
        raise _Closed() from None
    answer = _Answer()
    parser = httptools.HttpResponseParser(answer)
    answer.parser = parser
    started = False
    while not answer.complete:
        try:
            data = await connection.reader.read(_CHUNK)
        except ConnectionError:
            data = b""
        if not data:
            if not started:
                raise _Closed()
            if answer.headers_done and not answer.framed:
                return answer.status, False  # the body ran to the end of the connection
            raise HookError("RemoteProtocolError", "the response ended early")
        started = True
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            raise HookError("RemoteProtocolError", "the endpoint switched protocols") from None
        except httptools.HttpParserError as exc:
            raise HookError("RemoteProtocolError", str(exc)) from None
    return answer.status, answer.keep
