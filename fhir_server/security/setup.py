"""Builds the security objects from the settings (used once by api/app.py)."""

from __future__ import annotations

from fhir_server.config import Settings
from fhir_server.security.auth import TokenVerifier, VerifierConfig, ensure_dev_key
from fhir_server.security.facts_store import SharedFacts, StoreFactsLoader
from fhir_server.security.policy import AccessPolicy
from fhir_server.security.read_gate import ReadGate
from fhir_server.security.session import Enforcer
from fhir_server.storage.protocols import Store


def build_verifier(settings: Settings) -> TokenVerifier | None:
    """The token verifier: the identity provider's JWKS when configured, else (dev) the local key."""
    if not settings.security_enabled:
        return None
    if settings.jwks_path or settings.jwks_url:
        return TokenVerifier(VerifierConfig(jwks_path=settings.jwks_path, jwks_url=settings.jwks_url,
                                            issuer=settings.token_issuer, audience=settings.token_audience))
    if settings.dev_tokens:
        ensure_dev_key(settings.dev_key_path)
        return TokenVerifier.for_development(settings.dev_key_path)
    raise ValueError("security is enabled but no JWKS is configured and dev tokens are off: "
                     "set KZFHIR_JWKS_URL or KZFHIR_JWKS_PATH")


def build_enforcer(settings: Settings, store: Store) -> Enforcer:
    if not settings.security_enabled:
        return Enforcer(store, None, None)
    return Enforcer(store, AccessPolicy(), SharedFacts(StoreFactsLoader(store)))


def build_read_gate(enforcer: Enforcer, verifier: TokenVerifier | None, store: Store) -> ReadGate | None:
    """The compiled secured read by id (security/read_gate.py); None with security off."""
    if enforcer.policy is None or enforcer.facts is None or verifier is None:
        return None
    return ReadGate(enforcer.policy, enforcer.facts, verifier, store)
