"""How the resource server trusts the built-in authorization server: a verifier for its issuer and keys,
and the denylist of revoked access tokens that verifier asks on every use of a token."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import ClassVar

from fhir_server.config import Settings
from fhir_server.identity.issuer import IdentityConfig
from fhir_server.identity.keys import ALGORITHM, ensure_keys
from fhir_server.identity.registry import Registry
from fhir_server.security.auth.verifier import TokenVerifier, VerifierConfig


class Denylist:
    """Revoked access-token ids, held in memory and re-read from the registry whenever another connection
    has committed to it since the last look, so that a revocation in another process sharing the registry
    (``kzfhir serve --workers N``) stops the token at its very next use there, as in this process
    (``add``; issue 11 §3: caches that decide access are invalidated before the next request).

    "Since the last look" is SQLite's ``PRAGMA data_version`` on one connection kept open for it: the value
    changes exactly when another connection commits (https://sqlite.org/pragma.html#pragma_data_version), a
    few microseconds per use of a token, no file scan; any commit to the registry (a sign-in, a code) makes
    the next use re-read the small ``revoked_jti`` table."""

    _shared: ClassVar[dict[Path, Denylist]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def shared(cls, registry: Registry) -> Denylist:
        """The one denylist of a registry file in this process: the verifier and the revocation endpoint are
        built apart (security/setup.py, routes.py) and must see the same revocations at once."""
        key = registry.path.resolve()
        with cls._shared_lock:
            found = cls._shared.get(key)
            if found is None:
                found = cls._shared[key] = cls(registry)
            return found

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._ids: set[str] = set()
        self._seen: int | None = None
        self._lock = threading.Lock()
        # used under ``_lock`` only; tokens are checked on the event loop and in worker threads
        self._watch = sqlite3.connect(registry.path, check_same_thread=False, isolation_level=None)

    def add(self, jti: str, expires_at: int) -> None:
        self.registry.revoke_jti(jti, expires_at)
        with self._lock:
            self._ids.add(jti)

    def revoke_family(self, family: str) -> None:
        """Revoke a refresh-token chain and the access tokens issued in it, in this process at once."""
        ids = self.registry.revoke_family(family)
        with self._lock:
            self._ids.update(ids)

    def __contains__(self, jti: str) -> bool:
        with self._lock:
            version = self._watch.execute("PRAGMA data_version").fetchone()[0]
            if version != self._seen:
                # read before noting the version: a commit in between is seen again at the next use
                self._ids |= self.registry.revoked_jtis()
                self._seen = version
            return jti in self._ids

    def contains(self, jti: str) -> bool:
        return jti in self


def builtin_verifier(settings: Settings) -> TokenVerifier:
    """The verifier of the tokens the built-in server signs: its own JWKS file (re-read on an unknown
    ``kid``, so a key rotation needs no restart), its issuer, the FHIR base URL as audience, ES256 only."""
    config = IdentityConfig.from_settings(settings)
    denylist = Denylist.shared(Registry(config.database))
    ensure_keys(config.key_path)
    return TokenVerifier(
        VerifierConfig(jwks_path=config.key_path, algorithms=(ALGORITHM,), issuer=config.issuer,
                       audience=config.audience, max_lifetime_seconds=settings.max_token_lifetime_seconds,
                       break_glass_window_seconds=settings.break_glass_window_seconds),
        is_revoked=denylist.contains,
    )
