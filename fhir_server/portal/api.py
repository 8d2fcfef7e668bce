"""The portal's only way to data: the FHIR REST API, called with the signed-in person's own access token.

The calls go in-process to the whole application (its outermost ASGI layer: request ids, limits, the access
session, the policy, consent checks and the audit), through httpx's ASGI transport, with the browser's
address as the client address, so every page is judged and audited exactly as the same request from any other
client would be (issue 17: "the portal is a client, not a back door"). No page handler touches the store.

An answer of 401 with a refresh token at hand refreshes once (the token endpoint rotates the refresh token) and
repeats the call; if that fails too the session is over (:class:`SignedOut`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import orjson

from fhir_server.portal.sessions import REFRESH_CLAIM_SECONDS, Session, SessionStore

Asgi = Callable[..., Any]
FHIR_JSON = "application/fhir+json"
EARLY_SECONDS = 30  # refresh this long before the access token expires


class SignedOut(Exception):
    """The session's tokens are no longer accepted: the person must sign in again."""


class ApiError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"API answered {status}")
        self.status, self.body = status, body

    @property
    def text(self) -> str:
        """The OperationOutcome's diagnostics (already in the language the request asked for)."""
        if isinstance(self.body, dict):
            issues = self.body.get("issue") or []
            texts = [i.get("diagnostics") or (i.get("details") or {}).get("text", "") for i in issues]
            return "; ".join(t for t in texts if t)
        return ""


class Api:
    def __init__(self, base: str, client_id: str, sessions: SessionStore) -> None:
        self.base = base.rstrip("/")
        self.client_id = client_id
        self.sessions = sessions
        self.app: Asgi | None = None  # bound after the app is assembled (api/app.py)

    def _client(self, client_ip: str) -> httpx.AsyncClient:
        if self.app is None:
            raise RuntimeError("the portal's API client is not bound to the application")
        transport = httpx.ASGITransport(app=self.app, client=(client_ip, 0))
        return httpx.AsyncClient(transport=transport, base_url=self.base, timeout=60)

    async def form(self, path: str, data: Mapping[str, str], client_ip: str) -> httpx.Response:
        """A form post to the authorization server (token, revoke, introspect): no bearer token."""
        async with self._client(client_ip) as client:
            return await client.post(path, data=dict(data))

    async def call(self, session: Session, method: str, path: str, *, client_ip: str, lang: str,
                   params: Mapping[str, str] | None = None,
                   body: Any = None) -> Any:
        """The JSON answer of one API call as the session's person; ApiError for a 4xx/5xx answer."""
        if session.expires_at and time.time() > session.expires_at - EARLY_SECONDS:
            await self.refresh(session, client_ip, session.access_token)  # before it lapses mid-page
        for attempt in (0, 1):
            used = session.access_token
            headers = {"Authorization": f"Bearer {used}", "Accept": FHIR_JSON,
                       "Accept-Language": lang}
            content = None
            if body is not None:
                headers["Content-Type"] = FHIR_JSON
                content = orjson.dumps(body)
            async with self._client(client_ip) as client:
                response = await client.request(method, path, params=params, content=content, headers=headers)
            if response.status_code == 401:
                if attempt == 0 and await self.refresh(session, client_ip, used):
                    continue
                raise SignedOut()
            payload = response.json() if response.content else None
            if response.status_code >= 400:
                raise ApiError(response.status_code, payload)
            return payload
        raise SignedOut()  # pragma: no cover - the loop returns or raises

    async def refresh(self, session: Session, client_ip: str, used: str) -> bool:
        """A new access token for the session, once: a call that finds the token already replaced (another
        call of the same page, or another server process, refreshed it meanwhile) just uses the new one. In
        this process the session's lock orders the calls; across processes the stored session's claim does
        (sessions.py), the other process waiting for the token the claimant stores."""
        async with session.refreshing:
            if session.access_token != used:
                return bool(session.access_token)
            if not self.sessions.reload(session):
                return False
            if session.access_token != used:
                return bool(session.access_token)
            deadline = time.time() + REFRESH_CLAIM_SECONDS
            while not self.sessions.claim_refresh(session):
                await asyncio.sleep(0.1)
                if not self.sessions.reload(session):
                    return False
                if session.access_token != used:
                    return bool(session.access_token)
                if time.time() > deadline:
                    return False
            if not session.refresh_token:
                self.sessions.save(session)
                return False
            response = await self.form("/auth/token", {"grant_type": "refresh_token", "client_id": self.client_id,
                                                       "refresh_token": session.refresh_token}, client_ip)
            if response.status_code != 200:
                session.refresh_token = ""
                self.sessions.save(session)
                return False
            body = response.json()
            session.access_token = body["access_token"]
            session.refresh_token = body.get("refresh_token", "")
            session.expires_at = time.time() + int(body.get("expires_in", 0))
            self.sessions.save(session)
            return True

    async def revoke(self, session: Session, client_ip: str) -> None:
        """Logout: the refresh chain ends and the access token goes on the denylist (RFC 7009)."""
        for token in (session.refresh_token, session.access_token):
            if token:
                await self.form("/auth/revoke", {"client_id": self.client_id, "token": token}, client_ip)


def entries(bundle: Any) -> list[dict[str, Any]]:
    """The resources of a searchset Bundle (the matches; included ones are left to the caller)."""
    if not isinstance(bundle, dict):
        return []
    return [e["resource"] for e in bundle.get("entry") or [] if isinstance(e.get("resource"), dict)
            and (e.get("search") or {}).get("mode", "match") == "match"]
