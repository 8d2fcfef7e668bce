"""The authorization server's records in their own SQLite file (not the FHIR store): users and clients
registered by an administrator, authorization codes, refresh tokens, EHR launch contexts, the denylist of
revoked access tokens and the client assertions already used.

Codes and refresh tokens are kept only as SHA-256 digests: a copy of this file lets nobody sign in.
Each call opens its own short connection (WAL), so the synchronous authlib code can call it from a
worker thread and several server processes can share the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS users (
        username TEXT PRIMARY KEY, password_hash TEXT NOT NULL, fhir_user TEXT, role TEXT NOT NULL,
        bin TEXT, disabled INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS clients (
        client_id TEXT PRIMARY KEY, name TEXT NOT NULL, auth_method TEXT NOT NULL, redirect_uris TEXT NOT NULL,
        scopes TEXT NOT NULL, grant_types TEXT NOT NULL, jwks TEXT, bin TEXT, may_introspect INTEGER NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS codes (
        digest TEXT PRIMARY KEY, client_id TEXT NOT NULL, username TEXT NOT NULL, redirect_uri TEXT NOT NULL,
        scope TEXT NOT NULL, challenge TEXT, challenge_method TEXT, nonce TEXT, patient TEXT,
        auth_time INTEGER NOT NULL, expires_at INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS refresh_tokens (
        digest TEXT PRIMARY KEY, family TEXT NOT NULL, client_id TEXT NOT NULL, username TEXT NOT NULL,
        scope TEXT NOT NULL, patient TEXT, auth_time INTEGER NOT NULL, issued_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX IF NOT EXISTS refresh_family ON refresh_tokens(family)",
    """CREATE TABLE IF NOT EXISTS launches (
        launch TEXT PRIMARY KEY, patient TEXT NOT NULL, created_by TEXT NOT NULL, expires_at INTEGER NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS revoked_jti (jti TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS used_assertions (
        client_id TEXT NOT NULL, jti TEXT NOT NULL, expires_at INTEGER NOT NULL, PRIMARY KEY (client_id, jti))""",
    # the access tokens issued in a refresh-token chain: revoking the chain revokes them too (RFC 7009 §2.1)
    """CREATE TABLE IF NOT EXISTS family_tokens (
        family TEXT NOT NULL, jti TEXT NOT NULL, expires_at INTEGER NOT NULL, PRIMARY KEY (family, jti))""",
    # what a person approved for a client on the consent screen (remembered until they revoke it)
    """CREATE TABLE IF NOT EXISTS consents (
        username TEXT NOT NULL, client_id TEXT NOT NULL, asked TEXT NOT NULL, approved TEXT NOT NULL,
        granted_at INTEGER NOT NULL, PRIMARY KEY (username, client_id))""",
    # a signed-in person on their way through the consent screen or an external IdP (single use, short)
    """CREATE TABLE IF NOT EXISTS pending (
        digest TEXT PRIMARY KEY, kind TEXT NOT NULL, data TEXT NOT NULL, expires_at INTEGER NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS signin_failures (key TEXT NOT NULL, at INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS signin_failures_key ON signin_failures(key, at)",
    "CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
#: columns added after the first release, created on an older file when it is opened
MIGRATIONS = (("users", "iin", "ALTER TABLE users ADD COLUMN iin TEXT"),)
_USER_COLUMNS = "username, password_hash, fhir_user, role, bin, disabled, iin"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class User:
    username: str
    password_hash: str
    fhir_user: str | None
    role: str
    bin: str | None = None
    disabled: bool = False
    iin: str | None = None  # the person's IIN: EDS-certificate and eGov sign-in map to the user by it


@dataclass(frozen=True, slots=True)
class Consent:
    asked: frozenset[str]  # the scopes the consent screen showed
    approved: frozenset[str]  # the ones the person left ticked
    granted_at: int


@dataclass(frozen=True, slots=True)
class ClientRecord:
    client_id: str
    name: str
    auth_method: str  # "none" (public SMART app) or "private_key_jwt" (confidential app, backend service)
    redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...]
    grant_types: tuple[str, ...]
    jwks: dict[str, Any] | None = None
    bin: str | None = None  # the organisation a backend client acts for (its tokens' `bin`)
    may_introspect: bool = False
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class CodeRecord:
    client_id: str
    username: str
    redirect_uri: str
    scope: str
    challenge: str | None
    challenge_method: str | None
    nonce: str | None
    patient: str | None
    auth_time: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class RefreshRecord:
    digest: str
    family: str
    client_id: str
    username: str
    scope: str
    patient: str | None
    auth_time: int
    issued_at: int
    expires_at: int
    revoked: bool


class Registry:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            for statement in SCHEMA:
                db.execute(statement)
            for table, column, statement in MIGRATIONS:
                if column not in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}:
                    db.execute(statement)
            db.execute("CREATE UNIQUE INDEX IF NOT EXISTS users_iin ON users(iin) WHERE iin IS NOT NULL")
        with contextlib.suppress(OSError):  # a file system without modes
            path.chmod(0o600)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=10000")
            yield db
        finally:
            db.close()

    # -- users ------------------------------------------------------------------------------------------
    def add_user(self, user: User, *, replace: bool = False) -> None:
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        with self._db() as db:
            try:
                db.execute(f"{verb} INTO users (username, password_hash, fhir_user, role, bin, disabled, created, "
                           "iin) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           (user.username, user.password_hash, user.fhir_user, user.role, user.bin,
                            int(user.disabled), int(time.time()), user.iin))
            except sqlite3.IntegrityError as error:
                raise ValueError(f"user {user.username!r} or IIN {user.iin} exists (use --replace)") from error

    def user(self, username: str) -> User | None:
        with self._db() as db:
            row = db.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE username = ?", (username,)).fetchone()
        return None if row is None else _user(row)

    def user_by(self, *, iin: str | None = None, fhir_user: str | None = None) -> User | None:
        """The user registered with this IIN, or else the one whose fhirUser is this reference."""
        with self._db() as db:
            row = None
            if iin:
                row = db.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE iin = ?", (iin,)).fetchone()
            if row is None and fhir_user:
                rows = db.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE fhir_user = ?", (fhir_user,)).fetchall()
                row = rows[0] if len(rows) == 1 else None  # two users on one resource: ambiguous, no one
        return None if row is None else _user(row)

    def users(self) -> list[User]:
        with self._db() as db:
            rows = db.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY username").fetchall()
        return [_user(r) for r in rows]

    def set_user_disabled(self, username: str, disabled: bool) -> bool:
        with self._db() as db:
            return db.execute("UPDATE users SET disabled = ? WHERE username = ?",
                              (int(disabled), username)).rowcount == 1

    # -- clients ----------------------------------------------------------------------------------------
    def add_client(self, client: ClientRecord, *, replace: bool = False) -> None:
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        with self._db() as db:
            try:
                db.execute(f"{verb} INTO clients VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (client.client_id, client.name, client.auth_method, json.dumps(client.redirect_uris),
                            json.dumps(client.scopes), json.dumps(client.grant_types),
                            json.dumps(client.jwks) if client.jwks is not None else None, client.bin,
                            int(client.may_introspect), int(client.disabled), int(time.time())))
            except sqlite3.IntegrityError as error:
                raise ValueError(f"client {client.client_id!r} exists (use --replace)") from error

    def client(self, client_id: str) -> ClientRecord | None:
        with self._db() as db:
            row = db.execute("SELECT client_id, name, auth_method, redirect_uris, scopes, grant_types, jwks, bin, "
                             "may_introspect, disabled FROM clients WHERE client_id = ?", (client_id,)).fetchone()
        return None if row is None else _client(row)

    def clients(self) -> list[ClientRecord]:
        with self._db() as db:
            rows = db.execute("SELECT client_id, name, auth_method, redirect_uris, scopes, grant_types, jwks, bin, "
                              "may_introspect, disabled FROM clients ORDER BY client_id").fetchall()
        return [_client(row) for row in rows]

    def set_client_disabled(self, client_id: str, disabled: bool) -> bool:
        with self._db() as db:
            return db.execute("UPDATE clients SET disabled = ? WHERE client_id = ?",
                              (int(disabled), client_id)).rowcount == 1

    # -- authorization codes (single use) ---------------------------------------------------------------
    def save_code(self, code: str, record: CodeRecord) -> None:
        with self._db() as db:
            db.execute("INSERT INTO codes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (digest(code), record.client_id, record.username, record.redirect_uri, record.scope,
                        record.challenge, record.challenge_method, record.nonce, record.patient, record.auth_time,
                        record.expires_at))

    def take_code(self, code: str) -> CodeRecord | None:
        """The code's record, removed in the same statement: of two concurrent exchanges one gets it, and a
        code that failed its checks (a wrong PKCE verifier) cannot be tried again (RFC 9700 §4.8)."""
        with self._db() as db:
            row = db.execute("DELETE FROM codes WHERE digest = ? RETURNING client_id, username, redirect_uri, "
                             "scope, challenge, challenge_method, nonce, patient, auth_time, expires_at",
                             (digest(code),)).fetchone()
        if row is None or row[9] <= int(time.time()):
            return None
        return CodeRecord(*row)

    # -- refresh tokens (rotated; a family is one sign-in) -------------------------------------------------
    def save_refresh(self, token: str, record: RefreshRecord) -> None:
        with self._db() as db:
            db.execute("INSERT INTO refresh_tokens VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (digest(token), record.family, record.client_id, record.username, record.scope,
                        record.patient, record.auth_time, record.issued_at, record.expires_at, int(record.revoked)))

    def refresh(self, token: str) -> RefreshRecord | None:
        with self._db() as db:
            row = db.execute("SELECT digest, family, client_id, username, scope, patient, auth_time, issued_at, "
                             "expires_at, revoked FROM refresh_tokens WHERE digest = ?", (digest(token),)).fetchone()
        if row is None:
            return None
        return RefreshRecord(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], bool(row[9]))

    def revoke_refresh(self, token_digest: str) -> bool:
        """True for the one caller that revoked it (rotation: the old token is spent exactly once)."""
        with self._db() as db:
            return db.execute("UPDATE refresh_tokens SET revoked = 1 WHERE digest = ? AND revoked = 0",
                              (token_digest,)).rowcount == 1

    def revoke_family(self, family: str) -> list[str]:
        """End a sign-in's chain: its refresh tokens and every access token issued in it (their ``jti`` go on
        the denylist in the same transaction). Returns those ``jti``."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("UPDATE refresh_tokens SET revoked = 1 WHERE family = ?", (family,))
            rows = db.execute("SELECT jti, expires_at FROM family_tokens WHERE family = ?", (family,)).fetchall()
            db.executemany("INSERT OR IGNORE INTO revoked_jti VALUES (?, ?)", rows)
            db.execute("COMMIT")
        return [row[0] for row in rows]

    def add_family_token(self, family: str, jti: str, expires_at: int) -> None:
        with self._db() as db:
            db.execute("INSERT OR IGNORE INTO family_tokens VALUES (?, ?, ?)", (family, jti, expires_at))

    def families(self, username: str, client_id: str) -> list[str]:
        with self._db() as db:
            rows = db.execute("SELECT DISTINCT family FROM refresh_tokens WHERE username = ? AND client_id = ? "
                              "AND revoked = 0", (username, client_id)).fetchall()
        return [row[0] for row in rows]

    # -- consent (remembered per user and client) -----------------------------------------------------------
    def save_consent(self, username: str, client_id: str, asked: frozenset[str], approved: frozenset[str]) -> None:
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO consents VALUES (?, ?, ?, ?, ?)",
                       (username, client_id, " ".join(sorted(asked)), " ".join(sorted(approved)), int(time.time())))

    def consent(self, username: str, client_id: str) -> Consent | None:
        with self._db() as db:
            row = db.execute("SELECT asked, approved, granted_at FROM consents WHERE username = ? AND client_id = ?",
                             (username, client_id)).fetchone()
        return None if row is None else Consent(frozenset(row[0].split()), frozenset(row[1].split()), row[2])

    def consents(self, username: str) -> dict[str, Consent]:
        with self._db() as db:
            rows = db.execute("SELECT client_id, asked, approved, granted_at FROM consents WHERE username = ? "
                              "ORDER BY client_id", (username,)).fetchall()
        return {r[0]: Consent(frozenset(r[1].split()), frozenset(r[2].split()), r[3]) for r in rows}

    def revoke_consent(self, username: str, client_id: str) -> bool:
        with self._db() as db:
            return db.execute("DELETE FROM consents WHERE username = ? AND client_id = ?",
                              (username, client_id)).rowcount == 1

    # -- pending sign-ins, challenges, failed sign-ins, server secrets --------------------------------------
    def save_pending(self, key: str, kind: str, data: dict[str, Any], expires_at: int) -> None:
        with self._db() as db:
            db.execute("INSERT INTO pending VALUES (?, ?, ?, ?)", (digest(key), kind, json.dumps(data), expires_at))

    def take_pending(self, key: str, kind: str) -> dict[str, Any] | None:
        """The record, removed in the same statement (single use); None when unknown, of another kind or
        expired."""
        with self._db() as db:
            row = db.execute("DELETE FROM pending WHERE digest = ? AND kind = ? RETURNING data, expires_at",
                             (digest(key), kind)).fetchone()
        if row is None or row[1] <= int(time.time()):
            return None
        data: dict[str, Any] = json.loads(row[0])
        return data

    def add_failure(self, keys: list[str]) -> None:
        now = int(time.time())
        with self._db() as db:
            db.executemany("INSERT INTO signin_failures VALUES (?, ?)", [(digest(key), now) for key in keys])

    def failures(self, key: str, since: int) -> int:
        with self._db() as db:
            row = db.execute("SELECT count(*) FROM signin_failures WHERE key = ? AND at > ?",
                             (digest(key), since)).fetchone()
        return int(row[0])

    def clear_failures(self, key: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM signin_failures WHERE key = ?", (digest(key),))

    def secret(self, name: str) -> bytes:
        """A random server secret by name, made on first use and shared by every process on this file."""
        with self._db() as db:
            db.execute("INSERT OR IGNORE INTO secrets VALUES (?, ?)", (name, secrets.token_hex(32)))
            row = db.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()
        return bytes.fromhex(row[0])

    # -- EHR launch contexts -------------------------------------------------------------------------------
    def save_launch(self, launch: str, patient: str, created_by: str, expires_at: int) -> None:
        with self._db() as db:
            db.execute("INSERT INTO launches VALUES (?, ?, ?, ?)", (launch, patient, created_by, expires_at))

    def launch_patient(self, launch: str) -> str | None:
        with self._db() as db:
            row = db.execute("SELECT patient FROM launches WHERE launch = ? AND expires_at > ?",
                             (launch, int(time.time()))).fetchone()
        return None if row is None else str(row[0])

    # -- revoked access tokens and used client assertions ---------------------------------------------------
    def revoke_jti(self, jti: str, expires_at: int) -> None:
        with self._db() as db:
            db.execute("INSERT OR IGNORE INTO revoked_jti VALUES (?, ?)", (jti, expires_at))

    def revoked_jtis(self) -> set[str]:
        with self._db() as db:
            rows = db.execute("SELECT jti FROM revoked_jti WHERE expires_at > ?", (int(time.time()) - 60,)).fetchall()
        return {row[0] for row in rows}

    def use_assertion(self, client_id: str, jti: str, expires_at: int) -> bool:
        """True the first time a client's assertion id is seen (RFC 7523 §3 replay protection)."""
        with self._db() as db:
            return db.execute("INSERT OR IGNORE INTO used_assertions VALUES (?, ?, ?)",
                              (client_id, jti, expires_at)).rowcount == 1

    def purge(self) -> None:
        """Forget what has expired (codes, launches, spent refresh tokens, denylist entries, assertion ids)."""
        now = int(time.time())
        with self._db() as db:
            db.execute("DELETE FROM codes WHERE expires_at <= ?", (now,))
            db.execute("DELETE FROM launches WHERE expires_at <= ?", (now,))
            db.execute("DELETE FROM refresh_tokens WHERE expires_at <= ?", (now,))
            db.execute("DELETE FROM revoked_jti WHERE expires_at <= ?", (now - 3600,))
            db.execute("DELETE FROM used_assertions WHERE expires_at <= ?", (now - 3600,))
            db.execute("DELETE FROM family_tokens WHERE expires_at <= ?", (now,))
            db.execute("DELETE FROM pending WHERE expires_at <= ?", (now,))
            db.execute("DELETE FROM signin_failures WHERE at <= ?", (now - 86_400,))


def _user(row: tuple[Any, ...]) -> User:
    return User(row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6])


def _client(row: tuple[Any, ...]) -> ClientRecord:
    return ClientRecord(row[0], row[1], row[2], tuple(json.loads(row[3])), tuple(json.loads(row[4])),
                        tuple(json.loads(row[5])), json.loads(row[6]) if row[6] else None, row[7], bool(row[8]),
                        bool(row[9]))
