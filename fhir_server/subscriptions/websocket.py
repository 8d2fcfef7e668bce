"""The websocket channel (Subscriptions Backport IG 1.1.0, channel ``websocket``; R5 Subscription
"Channels": websocket) and its binding tokens.

1. The owner of a websocket Subscription asks ``Subscription/[id]/$get-ws-binding-token`` (or, at type
   level, names several with ``id``): a token, its expiry and the ``websocket-url`` (operations.py).
2. The client opens the websocket and sends ``bind-with-token <token>``; the server answers with a
   ``handshake`` notification Bundle per subscription the token names (a classic R4 subscription gets
   ``bound <id>``, R4 subscription.html "websockets").
3. The server then sends every ``event-notification`` and ``heartbeat`` of those subscriptions as the
   Bundle JSON in a text frame (classic: ``ping <id>``), built and judged by the same delivery code as
   the rest-hook (delivery.py): the owner's access at delivery time decides what a full-resource
   payload carries, and what is sent is audited as the owner's read.

A socket may bind several tokens, so several subscriptions. A token is **single-purpose**: it binds
the subscriptions it names and nothing else (it is no API token: it is not a JWT and no route accepts
it), is **single-use** (consumed by the bind) and **expires** after ``TOKEN_SECONDS``. Only its SHA-256
is kept, in memory. At the bind each subscription is checked again: it must still exist, be a websocket
subscription, not be ``off``, and belong to the owner the token was issued to.

A socket that binds nothing within ``BIND_WITHIN`` seconds is closed, as is one that sends something
else than a short command (``MAX_COMMAND`` characters).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from fhir_server.errors import operation_outcome
from fhir_server.security.policy.owned import owner_of
from fhir_server.subscriptions.notification import bundle, status_parameters
from fhir_server.validation.issues import Issue

PATH = "/subscriptions/websocket"
TOKEN_SECONDS = 60
MAX_PER_TOKEN = 100  # subscriptions one token may name
MAX_PER_SOCKET = 100  # subscriptions one socket may bind
BIND_WITHIN = 60.0  # seconds an unbound socket may stay open
MAX_COMMAND = 4096
MAX_LIVE_TOKENS = 10_000  # tokens issued and not yet used or expired, in all


class TooManyTokens(Exception):
    """More binding tokens are live than MAX_LIVE_TOKENS allows (refused with 429)."""


def websocket_url(base_url: str) -> str:
    """``ws(s)://`` + the base URL's host and path + PATH."""
    if base_url.startswith("https://"):
        return "wss://" + base_url.removeprefix("https://").rstrip("/") + PATH
    return "ws://" + base_url.removeprefix("http://").rstrip("/") + PATH


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Binding:
    subscriptions: tuple[str, ...]
    owner: str  # the owner key (security/policy/owned.py) of the caller it was issued to
    expires: float  # time.time()


class BindingTokens:
    def __init__(self, seconds: int = TOKEN_SECONDS) -> None:
        self.seconds = seconds
        self._tokens: dict[str, Binding] = {}
        self._lock = threading.Lock()

    def issue(self, subscriptions: Iterable[str], owner: str) -> tuple[str, float]:
        token = secrets.token_urlsafe(32)
        expires = time.time() + self.seconds
        with self._lock:
            now = time.time()
            for key in [k for k, b in self._tokens.items() if b.expires <= now]:
                del self._tokens[key]  # expired ones are dropped as new ones are issued
            if len(self._tokens) >= MAX_LIVE_TOKENS:
                raise TooManyTokens
            self._tokens[_digest(token)] = Binding(tuple(subscriptions), owner, expires)
        return token, expires

    def consume(self, token: str) -> Binding | None:
        """The binding of a live token, removed (single use); None if unknown, used or expired."""
        with self._lock:
            binding = self._tokens.pop(_digest(token), None)
        if binding is None or binding.expires <= time.time():
            return None
        return binding


@dataclass(eq=False)
class Connection:
    socket: WebSocket
    bound: set[str] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, text: str) -> bool:
        async with self.lock:
            if self.socket.application_state != WebSocketState.CONNECTED:
                return False
            try:
                await self.socket.send_text(text)
            except Exception:  # a socket closed under us: this one is gone, others may still take it
                return False
            return True


class Sockets:
    """The open connections by subscription id (in this process)."""

    def __init__(self) -> None:
        self._by_subscription: dict[str, set[Connection]] = {}

    def bind(self, connection: Connection, subscription_id: str) -> None:
        connection.bound.add(subscription_id)
        self._by_subscription.setdefault(subscription_id, set()).add(connection)

    def drop(self, connection: Connection) -> None:
        for sid in connection.bound:
            held = self._by_subscription.get(sid)
            if held is not None:
                held.discard(connection)
                if not held:
                    del self._by_subscription[sid]
        connection.bound.clear()

    def bound(self, subscription_id: str) -> bool:
        return bool(self._by_subscription.get(subscription_id))

    async def send(self, subscription_id: str, text: str) -> int:
        """Send to every connection bound to the subscription; how many took it."""
        sent = 0
        for connection in list(self._by_subscription.get(subscription_id, ())):
            if await connection.send(text):
                sent += 1
        return sent


def _outcome(message: str, code: str = "security") -> str:
    return orjson.dumps(operation_outcome([Issue("error", code, message, None)])).decode()


async def _bind(subscriptions: Any, connection: Connection, token: str) -> None:
    binding = subscriptions.tokens.consume(token)
    if binding is None:
        await connection.send(_outcome("the binding token is unknown, already used or expired"))
        return
    if len(connection.bound) + len(binding.subscriptions) > MAX_PER_SOCKET:
        await connection.send(_outcome(f"a websocket binds at most {MAX_PER_SOCKET} subscriptions", "too-costly"))
        return
    services = subscriptions.services
    for sid in binding.subscriptions:
        stored = await services.store.read("Subscription", sid)
        resource = orjson.loads(stored.data) if stored is not None and not stored.deleted and stored.data else None
        entry = subscriptions.registry.get(sid)
        if resource is None or entry is None or owner_of(resource) != binding.owner or \
                entry.spec.channel != "websocket" or resource.get("status") == "off":
            await connection.send(_outcome(f"Subscription/{sid} can no longer be bound"))
            continue
        subscriptions.sockets.bind(connection, sid)
        if entry.spec.classic is not None:
            await connection.send(f"bound {sid}")  # R4 subscription.html, websockets
            continue
        params = status_parameters(entry.base_url, sid, entry.spec.topic, "active", "handshake", entry.events, [])
        await connection.send(orjson.dumps(bundle(entry.base_url, sid, params, [])).decode())


async def subscription_socket(socket: WebSocket) -> None:
    """The websocket endpoint (api/app.py mounts it at PATH)."""
    from fhir_server.subscriptions.service import installed

    subscriptions = installed(socket.app.state.services)
    await socket.accept()
    if subscriptions is None:
        await socket.close(code=1011)
        return
    connection = Connection(socket)
    try:
        while True:
            timeout = None if connection.bound else BIND_WITHIN
            try:
                text = await asyncio.wait_for(socket.receive_text(), timeout)
            except TimeoutError:
                await socket.close(code=1008, reason="nothing bound")
                return
            command, _, argument = text.strip().partition(" ")
            if len(text) > MAX_COMMAND or command != "bind-with-token":
                await connection.send(_outcome("expected 'bind-with-token <token>'", "invalid"))
                await socket.close(code=1008, reason="unknown command")
                return
            await _bind(subscriptions, connection, argument.strip())
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client went away
    finally:
        subscriptions.sockets.drop(connection)
        with contextlib.suppress(Exception):
            if socket.application_state == WebSocketState.CONNECTED:
                await socket.close()
