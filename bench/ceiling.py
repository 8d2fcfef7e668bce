"""The read ceiling: the same ASGI server (uvicorn, uvloop, httptools) serving pre-serialised bytes
of the same size from one route, with no FHIR work at all. ``python -m bench.ceiling PORT SIZE KIND``
where KIND is ``fastapi`` (one FastAPI route) or ``asgi`` (a raw ASGI callable)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from fastapi import FastAPI
from starlette.responses import Response


def fastapi_app(body: bytes) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/{resource_type}/{resource_id}")
    async def read(resource_type: str, resource_id: str) -> Response:
        return Response(body, media_type="application/fhir+json; charset=utf-8", headers={"ETag": 'W/"1"'})

    return app


def asgi_app(body: bytes) -> Callable[..., Awaitable[None]]:
    headers = [(b"content-type", b"application/fhir+json; charset=utf-8"), (b"etag", b'W/"1"'),
               (b"content-length", str(len(body)).encode())]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def main() -> None:
    port, size, kind = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    body = b'{"resourceType":"Basic","text":"' + b"x" * max(0, size - 33) + b'"}'
    app = fastapi_app(body) if kind == "fastapi" else asgi_app(body)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, loop="uvloop",
                http="httptools")


if __name__ == "__main__":
    main()
