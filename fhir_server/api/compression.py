"""Response compression: gzip when the client accepts it and the body is worth it (RFC 9110 §8.4.1, §12.5.3).

Starlette's ``GZipMiddleware`` wraps every response in a responder object, even for a client that sends no
``Accept-Encoding`` (and, in the version we depend on, re-normalises its excluded content types on each
request): about 6 µs of the ~17 µs a read by id costs. This layer adds nothing at all to a request whose
client does not accept gzip, and one ``send`` wrapper to one that does.

- ``Accept-Encoding`` is read with its quality values: ``gzip;q=0`` refuses gzip, ``*`` accepts it unless
  ``gzip`` is named with ``q=0``; ``x-gzip`` is gzip (RFC 9110 §8.4.1.3).
- A response is left as it is when it already has a ``Content-Encoding``, is a 206, has a media type that
  is already compressed or streamed to a browser (images, audio, video, zip/gzip, ``text/event-stream``),
  or has a single body shorter than ``minimum`` bytes.
- A single body is compressed whole (``Content-Length`` set to the compressed size); a streamed one
  (``more_body``) chunk by chunk with a sync flush, so that each chunk reaches the client as it is sent
  (``$export`` files, NDJSON), without ``Content-Length``. Bodies of 128 KiB or more are compressed on a
  worker thread, so that the event loop keeps serving other requests.
- ``Vary: Accept-Encoding`` accompanies every compressed answer (RFC 9110 §12.5.5).
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

__all__ = ["Compression", "accepts_gzip"]

THREAD_MINIMUM = 128 * 1024
_SKIPPED_PREFIXES = (b"image/", b"audio/", b"video/", b"font/woff")
_SKIPPED = frozenset({b"application/zip", b"application/gzip", b"application/x-gzip", b"text/event-stream"})


def accepts_gzip(header: bytes) -> bool:
    """Whether an ``Accept-Encoding`` value admits gzip (RFC 9110 §12.5.3)."""
    star: bool | None = None
    for item in header.split(b","):
        name, _, params = item.partition(b";")
        name = name.strip().lower()
        if name not in (b"gzip", b"x-gzip", b"*"):
            continue
        quality = 1.0
        for param in params.split(b";"):
            key, _, value = param.partition(b"=")
            if key.strip().lower() == b"q":
                try:
                    quality = float(value.strip() or b"1")
                except ValueError:
                    quality = 0.0  # a malformed weight admits nothing (RFC 9110 §12.4.2 gives 0.000–1.000)
        if name == b"*":
            star = quality > 0
        else:
            return quality > 0
    return bool(star)


def _skipped(headers: list[tuple[bytes, bytes]], status: int) -> bool:
    if status == 206:
        return True
    for key, value in headers:
        lowered = key.lower()
        if lowered == b"content-encoding":
            return True
        if lowered == b"content-type":
            media = value.partition(b";")[0].strip().lower()
            if media in _SKIPPED or media.startswith(_SKIPPED_PREFIXES):
                return True
    return False


def _compressed_headers(headers: list[tuple[bytes, bytes]], length: int | None) -> list[tuple[bytes, bytes]]:
    out = [(k, v) for k, v in headers if k.lower() not in (b"content-length", b"content-encoding")]
    vary = [v for k, v in out if k.lower() == b"vary"]
    if not any(b"accept-encoding" in v.lower() or v.strip() == b"*" for v in vary):
        out.append((b"vary", b"Accept-Encoding"))
    out.append((b"content-encoding", b"gzip"))
    if length is not None:
        out.append((b"content-length", str(length).encode()))
    return out


class Compression:
    """An ASGI layer: gzip for the responses that merit it (see the module docstring)."""

    def __init__(self, app: App, minimum: int, level: int = 5) -> None:
        self.app = app
        self.minimum = minimum
        self.level = level

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for key, value in scope["headers"]:
                if key == b"accept-encoding":
                    if accepts_gzip(value):
                        await self.app(scope, receive, _Gzipping(send, self.minimum, self.level).send)
                        return
                    break
        await self.app(scope, receive, send)


class _Gzipping:
    """The ``send`` of one response to a client that accepts gzip."""

    __slots__ = ("compressor", "level", "minimum", "passthrough", "start", "target")

    def __init__(self, target: Send, minimum: int, level: int) -> None:
        self.target = target
        self.minimum = minimum
        self.level = level
        self.start: Message | None = None
        self.passthrough = False
        self.compressor: Any = None  # zlib's compress object, once a streamed body starts

    def _new_compressor(self) -> Any:
        return zlib.compressobj(self.level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)

    async def _compress(self, body: bytes, final: bool) -> bytes:
        if self.compressor is None:
            self.compressor = self._new_compressor()
        compressor = self.compressor

        def run() -> bytes:
            return bytes(compressor.compress(body) + compressor.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH))

        return await asyncio.to_thread(run) if len(body) >= THREAD_MINIMUM else run()

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if self.passthrough:
            await self.target(message)
        elif kind == "http.response.start":
            headers = list(message.get("headers", []))
            if _skipped(headers, message["status"]):
                self.passthrough = True
                await self.target(message)
            else:
                self.start = {**message, "headers": headers}
        elif kind == "http.response.body":
            body = bytes(message.get("body", b""))
            more = bool(message.get("more_body", False))
            start, self.start = self.start, None
            if start is not None:  # the first body message decides
                if not more and len(body) < self.minimum:
                    self.passthrough = True
                    await self.target(start)
                    await self.target(message)
                    return
                compressed = await self._compress(body, final=not more)
                length = None if more or start.get("trailers", False) else len(compressed)
                await self.target({**start, "headers": _compressed_headers(start["headers"], length)})
                await self.target({**message, "body": compressed})
            else:
                await self.target({**message, "body": await self._compress(body, final=not more)})
        else:  # pathsend, trailers, early hints: never compressed
            start, self.start = self.start, None
            if start is not None:
                self.passthrough = True
                await self.target(start)
            await self.target(message)
