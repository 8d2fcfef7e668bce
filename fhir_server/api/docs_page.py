"""The browsable API page (issue 13 item 5): ``GET [base]/docs/``, Swagger UI driven by
``[base]/openapi.json`` (the document ``api/openapi.py`` derives from the CapabilityStatement), like
HAPI's test page. Its assets are vendored in ``docs_assets/`` with their licence (no CDN: the page works
on a network without the internet, and nothing outside sees who browses the API).

A browser asking for the bare base URL (``Accept: text/html``, no query) is sent to the page; FHIR
clients, which ask for FHIR media types, get the system search as before.
"""

from __future__ import annotations

import gzip
from collections.abc import Awaitable, Callable, MutableMapping
from functools import cache
from pathlib import Path
from typing import Any

from fhir_server.api.compression import accepts_gzip

ASSETS = Path(__file__).parent / "docs_assets"
#: name served -> (file in docs_assets, media type). Only these are served: no path is read from the URL.
FILES: dict[str, tuple[str, str]] = {
    "": ("index.html", "text/html; charset=utf-8"),
    "swagger-ui-bundle.js": ("swagger-ui-bundle.js.gz", "text/javascript; charset=utf-8"),
    "swagger-ui.css": ("swagger-ui.css.gz", "text/css; charset=utf-8"),
    "kzfhir-docs.js": ("kzfhir-docs.js", "text/javascript; charset=utf-8"),
    "kzfhir-docs.css": ("kzfhir-docs.css", "text/css; charset=utf-8"),
    "favicon-32x32.png": ("favicon-32x32.png", "image/png"),
    "LICENSE-swagger-ui": ("LICENSE-swagger-ui", "text/plain; charset=utf-8"),
    "NOTICE-swagger-ui": ("NOTICE-swagger-ui", "text/plain; charset=utf-8"),
    "swagger-ui-bundle.js.LICENSE.txt": ("swagger-ui-bundle.js.LICENSE.txt", "text/plain; charset=utf-8"),
}
# Scripts only from the server itself; Swagger UI sets inline styles and shows data: images.
CSP = (b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@cache
def _content(name: str) -> bytes:
    return (ASSETS / name).read_bytes()


@cache
def _plain(name: str) -> bytes:
    return gzip.decompress(_content(name))


def _accepts(scope: MutableMapping[str, Any], header: bytes, token: bytes) -> bool:
    return any(k == header and token in v.lower() for k, v in scope["headers"])


class Pages:
    async def handle(self, scope: MutableMapping[str, Any], send: Send) -> bool:
        """Answer the page, its assets and a browser's bare base URL; False for anything else."""
        path = scope["path"]
        if path == "/" and not scope.get("query_string") and _accepts(scope, b"accept", b"text/html"):
            await _redirect(send, "docs/")
            return True
        if path == "/docs":
            await _redirect(send, "docs/")
            return True
        if not path.startswith("/docs/") or path.removeprefix("/docs/") not in FILES:
            return False
        name, media = FILES[path.removeprefix("/docs/")]
        # the vendored files change only with the package version; the page and its settings may change
        vendored = name.endswith((".gz", ".png"))
        headers = [(b"content-type", media.encode()), (b"x-content-type-options", b"nosniff"),
                   (b"cache-control", b"public, max-age=86400" if vendored else b"no-cache")]
        if name == "index.html":
            headers += [(b"content-security-policy", CSP), (b"referrer-policy", b"no-referrer")]
        if name.endswith(".gz"):
            headers.append((b"vary", b"Accept-Encoding"))
            if any(k == b"accept-encoding" and accepts_gzip(v) for k, v in scope["headers"]):
                body = _content(name)
                headers.append((b"content-encoding", b"gzip"))
            else:
                body = _plain(name)
        else:
            body = _content(name)
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
        return True


async def _redirect(send: Send, location: str) -> None:
    # relative, so that it is right behind a reverse proxy that mounts the API under a prefix
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", location.encode()), (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})
