"""The read ceiling: the same ASGI server (uvicorn, uvloop, httptools) serving pre-serialised bytes
of the same size as the resource at each path, with no FHIR work at all.
``python -m bench.ceiling PORT SIZES.json KIND``: SIZES maps each path to its body size; KIND is
``fastapi`` (one FastAPI route) or ``asgi`` (a raw ASGI callable)."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from fastapi import FastAPI
from starlette.responses import Response


def _body(size: int) -> bytes:
    return b'{"resourceType":"Basic","text":"' + b"x" * max(0, size - 33) + b'"}'


def fastapi_app(bodies: dict[str, bytes]) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    default = _body(800)

    @app.get("/{resource_type}/{resource_id}")
    async def read(resource_type: str, resource_id: str) -> Response:
        body = bodies.get(f"/{resource_type}/{resource_id}", default)
        return Response(body, media_type="application/fhir+json; charset=utf-8", headers={"ETag": 'W/"1"'})

    return app


def asgi_app(bodies: dict[str, bytes]) -> Callable[..., Awaitable[None]]:
    default = _body(800)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = bodies.get(scope["path"], default)
        headers = [(b"content-type", b"application/fhir+json; charset=utf-8"), (b"etag", b'W/"1"'),
                   (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def main() -> None:
    port, sizes_file, kind = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    with open(sizes_file) as fh:
        bodies = {path: _body(size) for path, size in json.load(fh).items()}
    app = fastapi_app(bodies) if kind == "fastapi" else asgi_app(bodies)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, loop="uvloop",
                http="httptools")


if __name__ == "__main__":
    main()
