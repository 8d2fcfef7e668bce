"""How the resource server trusts the built-in authorization server: a verifier for its issuer and keys,
and the denylist of revoked access tokens that verifier asks on every use of a token."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import ClassVar

from fhir_server.config import Settings
from fhir_server.identity.issuer import IdentityConfig
from fhir_server.identity.keys import ALGORITHM, ensure_keys
from fhir_server.identity.registry import Registry
from fhir_server.security.auth.verifier import TokenVerifier, VerifierConfig

DENYLIST_REFRESH_SECONDS = 2.0


class Denylist:
    """Revoked access-token ids. Held in memory and re-read from the registry at most every two seconds, so
    a revocation in another process sharing the registry takes effect within that time; in this process at
    once (``add``)."""

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
        self._loaded = float("-inf")
        self._lock = threading.Lock()

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
        now = time.monotonic()
        if now - self._loaded >= DENYLIST_REFRESH_SECONDS:
            ids = self.registry.revoked_jtis()
            with self._lock:
                self._ids, self._loaded = ids | self._ids, now
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
