"""A direct ASGI route for ``GET [base]/[type]/[id]``, the request the server answers most.

FastAPI's routing and request objects cost more than the read itself (see docs/performance.md), so
plain reads are matched here on the raw ASGI scope and handed to the same interaction
(``interactions/read.py``) every other route uses; anything else — query strings, other methods,
other paths — falls through to the FastAPI application unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.datastructures import State

from fhir_server.api.common import authenticate
from fhir_server.api.negotiation import MEDIA_TYPE, accept_ok
from fhir_server.errors import FhirError
from fhir_server.i18n import choose
from fhir_server.i18n.outcome import language_headers, localised_outcome
from fhir_server.interactions import read
from fhir_server.interactions.base import Services
from fhir_server.interactions.request import open_request
from fhir_server.jsonio import dumps
from fhir_server.security.auth.request import LowerCaseHeaders

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_MEDIA = MEDIA_TYPE.encode()


def _plain_read(scope: Scope) -> tuple[str, str] | None:
    if scope["type"] != "http" or scope["method"] != "GET" or scope.get("query_string"):
        return None
    parts = scope["path"].split("/")
    if len(parts) != 3 or not parts[2] or parts[2][0] in "_$" or not parts[1][:1].isupper():
        return None
    return parts[1], parts[2]


class FastReads:
    """The outermost ASGI application: plain reads here, everything else to the FastAPI app."""

    def __init__(self, app: FastAPI, services: Services) -> None:
        self.app = app
        self.services = services

    @property
    def router(self) -> APIRouter:
        return self.app.router

    @property
    def state(self) -> State:
        return self.app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = _plain_read(scope)
        if target is None:
            await self.app(scope, receive, send)
            return
        state = scope.get("state")
        if state is not None:
            state["interaction"] = "read"  # for the metrics (api/operator.py): no second parse of the path
        headers = LowerCaseHeaders((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"])
        if not accept_ok(headers.get("accept")):
            await self.app(scope, receive, send)  # let the regular route produce the 406
            return
        client = scope.get("client")
        base = ""  # a read answers with no Location or links: the base URL is never needed here
        client_ip = client[0] if client else None
        try:
            resp = None
            if self.services.read_gate is not None:
                resp = await read.compiled(self.services, headers, client_ip, target[0], target[1])
            if resp is None:
                ctx = await authenticate(self.services, headers, client_ip)
                req = open_request(self.services, ctx, base_url=base)
                try:
                    resp = await read.handle(req, target[0], target[1], if_none_match=headers.get("if-none-match"),
                                             if_modified_since=headers.get("if-modified-since"))
                finally:
                    await req.access.flush()
            status, body, extra = resp.status, resp.body, resp.headers
        except FhirError as exc:  # only now is Accept-Language read (docs/languages.md)
            outcome, lang = localised_outcome(exc.issues, choose(headers.get("accept-language"),
                                                                 self.services.settings.default_language))
            status, body, extra = exc.status, dumps(outcome), {**exc.headers, **language_headers(lang)}
        out = [(k.lower().encode(), v.encode()) for k, v in extra.items()]
        if body is not None and status != 304:
            out += [(b"content-type", _MEDIA), (b"content-length", str(len(body)).encode())]
        else:
            body = b""
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": body})

