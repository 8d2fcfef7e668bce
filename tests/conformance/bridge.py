"""Running the kit's command line in a test against an in-process server."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from conformance.cli import main


class LoopBridge(httpx.AsyncBaseTransport):
    """Runs each request on the test's event loop, where the server's store lives, although the CLI
    (``asyncio.run`` in a worker thread) has a loop of its own."""

    def __init__(self, app: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.loop = loop

    async def _send(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        content = await response.aread()  # decoded: the copy must not claim its original encoding
        headers = [(k, v) for k, v in response.headers.items() if k.lower() not in ("content-encoding",
                                                                                   "content-length")]
        return httpx.Response(response.status_code, headers=headers, content=content)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        future = asyncio.run_coroutine_threadsafe(self._send(request), self.loop)
        return await asyncio.wrap_future(future)


async def cli(argv: list[str], app: Any) -> int:
    """``main(argv)`` in a worker thread (it calls ``asyncio.run``), its requests answered by ``app``."""
    bridge = LoopBridge(app, asyncio.get_running_loop())
    return await asyncio.to_thread(main, argv, transport=bridge)
