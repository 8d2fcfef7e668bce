"""The portal's sessions: the person's tokens stay on the server; the browser holds only a signed reference.

- The cookie is ``<session id>.<HMAC-SHA256(id)>`` (key: a secret kept in the identity registry), HttpOnly,
  SameSite=Strict, Secure (with the ``__Host-`` prefix) whenever the server's public URL is https. A forged
  or altered cookie is no session; the id itself is 256 random bits.
- The state (access and refresh token, who signed in, the CSRF secret) is kept in this process's memory,
  never in the cookie: a restart signs everyone out, which is the safe side (``kzfhir serve`` is one process).
- A session ends after ``portal_session_idle_seconds`` without a request and ``portal_session_max_seconds``
  after sign-in, and at logout; an ended session is removed, its tokens revoked by the caller.
- CSRF (OWASP "synchronizer token"): every session has its own random token; every POST form carries it and
  is refused (403) unless it matches. Before sign-in, the pending sign-in (PKCE verifier, state) lives in a
  short pre-session of the same kind, so the callback can only complete a sign-in this browser started.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

#: the sign-in started here must come back within this many seconds (the person types a password, signs a CMS)
PENDING_SECONDS = 600
#: at most this many sessions not yet signed in are kept: anyone can start a sign-in, so beyond it the oldest
#: pending ones are dropped (their sign-in fails and is started again) rather than memory growing
MAX_PENDING = 10_000


@dataclass
class Session:
    sid: str
    csrf: str
    created: float
    seen: float
    access_token: str = ""
    refresh_token: str = ""
    expires_at: float = 0.0
    username: str = ""
    role: str = ""
    fhir_user: str = ""  # e.g. Patient/p1
    patient: str = ""  # the Patient id the cabinet shows (own, or the launch context)
    pending: dict[str, Any] = field(default_factory=dict)  # state, verifier, next (before sign-in)
    #: one refresh at a time: a page's parallel API calls must not each spend the same refresh token (a reuse
    #: would revoke the whole chain, RFC 9700 §4.14.2)
    refreshing: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    @property
    def signed_in(self) -> bool:
        return bool(self.access_token)


class SessionStore:
    def __init__(self, key: bytes, idle_seconds: int, max_seconds: int, *, secure: bool) -> None:
        self._key = key
        self.idle_seconds, self.max_seconds = idle_seconds, max_seconds
        self.secure = secure
        self.cookie_name = "__Host-kzfhir_portal" if secure else "kzfhir_portal"
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def _mac(self, sid: str) -> str:
        return hmac.new(self._key, f"portal-session:{sid}".encode(), hashlib.sha256).hexdigest()

    def cookie_value(self, session: Session) -> str:
        return f"{session.sid}.{self._mac(session.sid)}"

    def new(self) -> Session:
        now = time.time()
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now, now)
        with self._lock:
            self._purge(now)
            pending = [s for s in self._sessions.values() if not s.signed_in]
            if len(pending) >= MAX_PENDING:
                for old in sorted(pending, key=lambda s: s.created)[: len(pending) - MAX_PENDING + 1]:
                    del self._sessions[old.sid]
            self._sessions[session.sid] = session
        return session

    def get(self, cookie: str | None, *, now: float | None = None) -> Session | None:
        """The live session the cookie names, its idle clock restarted; None for no, a forged or an ended one."""
        if not cookie or "." not in cookie or len(cookie) > 200:
            return None
        sid, _, mac = cookie.partition(".")
        if not hmac.compare_digest(self._mac(sid), mac):
            return None
        moment = time.time() if now is None else now
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                return None
            if self.expired(session, moment):
                del self._sessions[sid]
                return None
            session.seen = moment
            return session

    def expired(self, session: Session, now: float) -> bool:
        limit = self.max_seconds if session.signed_in else PENDING_SECONDS
        return now - session.seen > self.idle_seconds or now - session.created > limit

    def end(self, session: Session) -> None:
        with self._lock:
            self._sessions.pop(session.sid, None)

    def rotate(self, session: Session) -> Session:
        """A new id for a session that just signed in (session fixation, OWASP): the pre-session's id dies."""
        with self._lock:
            self._sessions.pop(session.sid, None)
            now = time.time()
            fresh = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now, now)
            self._sessions[fresh.sid] = fresh
            return fresh

    def csrf_ok(self, session: Session | None, submitted: str) -> bool:
        return session is not None and bool(submitted) and hmac.compare_digest(session.csrf, submitted)

    def _purge(self, now: float) -> None:
        for sid in [sid for sid, s in self._sessions.items() if self.expired(s, now)]:
            del self._sessions[sid]

    def __len__(self) -> int:
        return len(self._sessions)
