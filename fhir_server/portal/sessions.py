"""The portal's sessions: the person's tokens stay on the server; the browser holds only a signed reference.

- The cookie is ``<session id>.<HMAC-SHA256(id)>`` (key: a secret kept in the identity registry), HttpOnly,
  SameSite=Strict, Secure (with the ``__Host-`` prefix) whenever the server's public URL is https. A forged
  or altered cookie is no session; the id itself is 256 random bits.
- The state (access and refresh token, who signed in, the CSRF secret) is kept in the identity registry's
  SQLite file (table ``portal_sessions``, WAL, one short connection per call as the registry's own), never in
  the cookie: every server process on that file serves the same signed-in browser, and a restart signs nobody
  out. A row is named by ``HMAC(key, id)`` and its state is encrypted with AES-256-GCM under a key derived from
  the session id, which only the browser holds: as for the registry's refresh-token digests, a copy of the
  file lets nobody act as the person.
- A session ends after ``portal_session_idle_seconds`` without a request and ``portal_session_max_seconds``
  after sign-in, and at logout; an ended session is removed, its tokens revoked by the caller.
- CSRF (OWASP "synchronizer token"): every session has its own random token; every POST form carries it and
  is refused (403) unless it matches. Before sign-in, the pending sign-in (PKCE verifier, state) lives in a
  short pre-session of the same kind, so the callback can only complete a sign-in this browser started.
- A token refresh is claimed in the row (``refreshing_until``) so that two processes serving one page's calls
  never both spend the same refresh token (a reuse revokes the whole chain, RFC 9700 §4.14.2): the other
  process waits for the new token (:meth:`SessionStore.claim_refresh`, :meth:`SessionStore.reload`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import sqlite3
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

#: the sign-in started here must come back within this many seconds (the person types a password, signs a CMS)
PENDING_SECONDS = 600
#: at most this many sessions not yet signed in are kept: anyone can start a sign-in, so beyond it the oldest
#: pending ones are dropped (their sign-in fails and is started again) rather than the table growing
MAX_PENDING = 10_000
#: how long one process may hold the claim to refresh a session's token
REFRESH_CLAIM_SECONDS = 15
SCHEMA = """CREATE TABLE IF NOT EXISTS portal_sessions (
    row TEXT PRIMARY KEY, created REAL NOT NULL, seen REAL NOT NULL, signed_in INTEGER NOT NULL,
    refreshing_until REAL NOT NULL DEFAULT 0, state BLOB NOT NULL)"""
_STATE = ("csrf", "access_token", "refresh_token", "expires_at", "username", "role", "fhir_user", "patient",
          "pending")


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
    #: one refresh at a time in this process: a page's parallel API calls must not each spend the same refresh
    #: token; across processes the row's claim does the same (SessionStore.claim_refresh)
    refreshing: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False, compare=False)

    @property
    def signed_in(self) -> bool:
        return bool(self.access_token)


class SessionStore:
    def __init__(self, key: bytes, idle_seconds: int, max_seconds: int, *, secure: bool, path: Path) -> None:
        self._key = key
        self.idle_seconds, self.max_seconds = idle_seconds, max_seconds
        self.secure = secure
        self.cookie_name = "__Host-kzfhir_portal" if secure else "kzfhir_portal"
        self.path = path
        #: this process's refresh lock per session, shared by the requests that hold the session at the moment
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        with self._db() as db:
            db.execute(SCHEMA)
            db.execute("CREATE INDEX IF NOT EXISTS portal_sessions_pending ON portal_sessions(signed_in, created)")

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=10000")
            yield db
        finally:
            db.close()

    # -- names and sealing --------------------------------------------------------------------------------
    def _mac(self, sid: str) -> str:
        return hmac.new(self._key, f"portal-session:{sid}".encode(), hashlib.sha256).hexdigest()

    def _row(self, sid: str) -> str:
        return hmac.new(self._key, f"portal-session-row:{sid}".encode(), hashlib.sha256).hexdigest()

    def _cipher(self, sid: str) -> AESGCM:
        return AESGCM(hmac.new(self._key, f"portal-session-state:{sid}".encode(), hashlib.sha256).digest())

    def _seal(self, session: Session) -> bytes:
        state = json.dumps({name: getattr(session, name) for name in _STATE}).encode()
        nonce = secrets.token_bytes(12)
        return nonce + self._cipher(session.sid).encrypt(nonce, state, self._row(session.sid).encode())

    def _open(self, sid: str, sealed: bytes, created: float, seen: float) -> Session | None:
        try:
            state = json.loads(self._cipher(sid).decrypt(sealed[:12], sealed[12:], self._row(sid).encode()))
        except (InvalidTag, ValueError):
            return None
        session = Session(sid, str(state.pop("csrf")), created, seen)
        for name, value in state.items():
            setattr(session, name, value)
        session.refreshing = self._lock(sid)
        return session

    def _lock(self, sid: str) -> asyncio.Lock:
        lock = self._locks.get(sid)
        if lock is None:
            lock = self._locks[sid] = asyncio.Lock()
        return lock

    def cookie_value(self, session: Session) -> str:
        return f"{session.sid}.{self._mac(session.sid)}"

    def sid_of(self, cookie: str | None) -> str | None:
        """The session id a cookie names, if its MAC is right."""
        if not cookie or "." not in cookie or len(cookie) > 200:
            return None
        sid, _, mac = cookie.partition(".")
        return sid if hmac.compare_digest(self._mac(sid), mac) else None

    # -- the life of a session ------------------------------------------------------------------------------
    def _fresh(self) -> Session:
        now = time.time()
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now, now)
        session.refreshing = self._lock(session.sid)
        return session

    def new(self) -> Session:
        session = self._fresh()
        with self._db() as db:
            self._purge(db, session.created)
            extra = db.execute("SELECT count(*) FROM portal_sessions WHERE signed_in = 0").fetchone()[0] \
                - MAX_PENDING + 1
            if extra > 0:
                db.execute("DELETE FROM portal_sessions WHERE row IN (SELECT row FROM portal_sessions WHERE "
                           "signed_in = 0 ORDER BY created LIMIT ?)", (extra,))
            self._insert(db, session)
        return session

    def _insert(self, db: sqlite3.Connection, session: Session) -> None:
        db.execute("INSERT INTO portal_sessions (row, created, seen, signed_in, state) VALUES (?, ?, ?, ?, ?)",
                   (self._row(session.sid), session.created, session.seen, int(session.signed_in),
                    self._seal(session)))

    def save(self, session: Session) -> None:
        """Store what changed in a session (its tokens, who signed in, a pending sign-in); ends any refresh
        claim. A session that ended meanwhile (logout in another tab, expiry) stays ended."""
        with self._db() as db:
            db.execute("UPDATE portal_sessions SET created = ?, signed_in = ?, refreshing_until = 0, state = ? "
                       "WHERE row = ?", (session.created, int(session.signed_in), self._seal(session),
                                         self._row(session.sid)))

    def _load(self, sid: str) -> tuple[Session | None, bool]:
        with self._db() as db:
            found = db.execute("SELECT created, seen, state FROM portal_sessions WHERE row = ?",
                               (self._row(sid),)).fetchone()
        if found is None:
            return None, False
        return self._open(sid, found[2], float(found[0]), float(found[1])), True

    def get(self, cookie: str | None, *, now: float | None = None) -> Session | None:
        """The live session the cookie names, its idle clock restarted; None for no, a forged or an ended one."""
        sid = self.sid_of(cookie)
        if sid is None:
            return None
        moment = time.time() if now is None else now
        session, _ = self._load(sid)
        if session is None:
            return None
        if self.expired(session, moment):
            self.end(session)
            return None
        with self._db() as db:
            db.execute("UPDATE portal_sessions SET seen = max(seen, ?) WHERE row = ?", (moment, self._row(sid)))
        session.seen = moment
        return session

    def reload(self, session: Session) -> bool:
        """Take over the tokens stored for the session (another process may have refreshed them); False when
        the session is gone."""
        stored, _ = self._load(session.sid)
        if stored is None:
            return False
        for name in _STATE:
            setattr(session, name, getattr(stored, name))
        return True

    def claim_refresh(self, session: Session, *, now: float | None = None) -> bool:
        """True when this process may refresh the session's token now (no other process is doing it)."""
        moment = time.time() if now is None else now
        with self._db() as db:
            return db.execute("UPDATE portal_sessions SET refreshing_until = ? WHERE row = ? AND "
                              "refreshing_until < ?", (moment + REFRESH_CLAIM_SECONDS, self._row(session.sid),
                                                       moment)).rowcount == 1

    def expired(self, session: Session, now: float) -> bool:
        limit = self.max_seconds if session.signed_in else PENDING_SECONDS
        return now - session.seen > self.idle_seconds or now - session.created > limit

    def end(self, session: Session) -> None:
        with self._db() as db:
            db.execute("DELETE FROM portal_sessions WHERE row = ?", (self._row(session.sid),))
        self._locks.pop(session.sid, None)

    def rotate(self, session: Session) -> Session:
        """A new id for a session that just signed in (session fixation, OWASP): the pre-session's id dies."""
        fresh = self._fresh()
        with self._db() as db:
            db.execute("DELETE FROM portal_sessions WHERE row = ?", (self._row(session.sid),))
            self._insert(db, fresh)
        self._locks.pop(session.sid, None)
        return fresh

    def csrf_ok(self, session: Session | None, submitted: str) -> bool:
        return session is not None and bool(submitted) and hmac.compare_digest(session.csrf, submitted)

    def _purge(self, db: sqlite3.Connection, now: float) -> None:
        db.execute("DELETE FROM portal_sessions WHERE seen < ? OR (signed_in = 1 AND created < ?) OR "
                   "(signed_in = 0 AND created < ?)", (now - self.idle_seconds, now - self.max_seconds,
                                                       now - PENDING_SECONDS))

    def pending_count(self) -> int:
        with self._db() as db:
            return int(db.execute("SELECT count(*) FROM portal_sessions WHERE signed_in = 0").fetchone()[0])

    def __len__(self) -> int:
        """The sessions not yet ended (an expired one counts until it is next seen or purged)."""
        with self._db() as db:
            return int(db.execute("SELECT count(*) FROM portal_sessions").fetchone()[0])

