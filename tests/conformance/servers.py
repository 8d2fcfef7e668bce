"""Deliberately broken FHIR endpoints: each one breaks one rule, so the kit must name that failure."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from conformance.consent import unverified_claims
from fhir_server.validation.profile import KZ_PROFILES

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def empty_object_server(seen_headers: list[dict[str, str]] | None = None) -> Starlette:
    """Answers ``200 {}`` to every request, whatever it is."""

    async def anything(request: Request) -> JSONResponse:
        if seen_headers is not None:
            seen_headers.append(dict(request.headers))
        return JSONResponse({})

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    return Starlette(routes=[Route("/{path:path}", anything, methods=methods)])


def without_etag(app: ASGIApp) -> ASGIApp:
    """The wrapped server, minus every ETag header (version-aware clients are left blind)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        async def strip(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [(k, v) for k, v in message["headers"] if k.lower() != b"etag"]
            await send(message)

        await app(scope, receive, strip)

    return wrapped


def rewriting(app: ASGIApp, applies: Callable[[Scope], bool], edit: Callable[[Any], Any]) -> ASGIApp:
    """The wrapped server, the JSON body of each answer to a request ``applies`` to passed through ``edit``."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not applies(scope):
            await app(scope, receive, send)
            return
        start: Message = {}
        body = bytearray()
        # the statement is rewritten here, so ask the server for it uncompressed
        scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k.lower() != b"accept-encoding"]}

        async def collect(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            body.extend(message.get("body", b""))
            if not message.get("more_body"):
                new = _edited(bytes(body), edit)
                headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
                await send({**start, "headers": [*headers, (b"content-length", str(len(new)).encode())]})
                await send({"type": "http.response.body", "body": new})

        await app(scope, receive, collect)

    return wrapped


def _edited(raw: bytes, edit: Callable[[Any], Any]) -> bytes:
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        return raw
    return raw if data is None else json.dumps(edit(data)).encode()


def claiming_kz_profiles(app: ASGIApp) -> ASGIApp:
    """The wrapped server, its CapabilityStatement declaring every KZ profile as supported."""
    return rewriting(app, lambda scope: scope["path"] == "/metadata", _with_kz_profiles)


def _with_kz_profiles(statement: Any) -> Any:
    for entry in statement["rest"][0]["resource"]:
        if entry["type"] in KZ_PROFILES:
            entry["supportedProfile"] = [KZ_PROFILES[entry["type"]]]
    return statement


_READS = {"read", "vread", "search-type", "search-system", "history-instance", "operation"}


def _writes_only(body: Any) -> Any:
    """A Bundle of AuditEvents without those of reads, searches and operations."""
    if isinstance(body, dict) and body.get("resourceType") == "Bundle":
        body["entry"] = [e for e in body.get("entry") or []
                         if not {s.get("code") for s in (e.get("resource") or {}).get("subtype") or []} & _READS]
    return body


def auditing_writes_only(app: ASGIApp) -> ASGIApp:
    """The wrapped server, its audit trail and patients' access logs without any read or search: the
    common defect of logging changes only (AC-14 asks for who placed, changed or deleted — and the
    access-rights rules for every access)."""
    return rewriting(app, lambda scope: scope["path"].startswith("/AuditEvent") or "$access-log" in scope["path"],
                     _writes_only)


def service_account_for(app: ASGIApp, applies: Callable[[Scope], bool], token: str) -> ASGIApp:
    """The wrapped server, each request ``applies`` to sent with ``token`` (an MIS's own service account)
    instead of the caller's: a gateway that enforces consent everywhere but on one path."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and applies(scope):
            headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"authorization"]
            scope = {**scope, "headers": [*headers, (b"authorization", f"Bearer {token}".encode())]}
        await app(scope, receive, send)

    return wrapped


def refusing_practitioners(app: ASGIApp) -> ASGIApp:
    """The wrapped server refusing every request of a practitioner's token (403), consent or not: "deny
    everything" passes every probe of hidden data, and must still fail."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        token = next((v[7:].decode("latin-1") for k, v in scope.get("headers") or []
                      if k.lower() == b"authorization" and v.lower().startswith(b"bearer ")), None)
        if scope["type"] == "http" and unverified_claims(token).get("role") == "practitioner":
            outcome = {"resourceType": "OperationOutcome",
                       "issue": [{"severity": "error", "code": "forbidden", "diagnostics": "access denied"}]}
            await JSONResponse(outcome, status_code=403, media_type="application/fhir+json")(scope, receive, send)
            return
        await app(scope, receive, send)

    return wrapped


def paging_before_filtering(app: ASGIApp, token: str) -> ASGIApp:
    """The wrapped server paging a search before it filters by consent: a caller's empty page of
    ``_count=1`` gets a ``next`` link whenever the unfiltered search (as ``token``, the MIS) has a match."""

    async def has_match(scope: Scope) -> bool:
        url = f"{scope['path']}?{scope['query_string'].decode()}"
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://inner.test") as inner:
            answer = await inner.get(url, headers={"Authorization": f"Bearer {token}"})
        return bool(answer.status_code == 200 and answer.json().get("entry"))

    def applies(scope: Scope) -> bool:
        return scope["method"] == "GET" and scope["path"] == "/Observation" and b"_count=1" in scope["query_string"]

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not applies(scope) or not await has_match(scope):
            await app(scope, receive, send)
            return

        def with_next(bundle: Any) -> Any:
            if isinstance(bundle, dict) and bundle.get("resourceType") == "Bundle" and not bundle.get("entry"):
                bundle["link"] = [*bundle.get("link", []), {"relation": "next", "url": "http://kzfhir.test/Observation?page=2"}]
            return bundle

        await rewriting(app, lambda _: True, with_next)(scope, receive, send)

    return wrapped
