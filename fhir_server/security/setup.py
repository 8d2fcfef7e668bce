"""Builds the security objects from the settings (used once by api/app.py)."""

from __future__ import annotations

from typing import Any

from fhir_server.config import Settings
from fhir_server.i18n import msg
from fhir_server.identity.trust import builtin_verifier
from fhir_server.security.auth import TokenVerifier, VerifierConfig, ensure_dev_key
from fhir_server.security.facts_store import SharedFacts, StoreFactsLoader
from fhir_server.security.policy import AccessPolicy
from fhir_server.security.policy.granular import ResourceMatcher
from fhir_server.security.read_gate import ReadGate
from fhir_server.security.session import Enforcer
from fhir_server.storage.protocols import Store


def build_verifier(settings: Settings) -> TokenVerifier | None:
    """The token verifier: the identity provider's JWKS when configured, else (development only) the
    local key of ``kzfhir token``. A production server without an identity provider does not start
    (issue 10 §6): a development key on disk must never become a way in."""
    production = settings.env == "production"
    if not settings.security_enabled:
        if production:
            raise ValueError("KZFHIR_ENV=production refuses to start with security off (KZFHIR_SECURITY_ENABLED=false "
                             "or --open): open mode has no authentication, access policy or audit")
        return None
    limits: dict[str, Any] = {"max_lifetime_seconds": settings.max_token_lifetime_seconds,
                              "break_glass_window_seconds": settings.break_glass_window_seconds}
    # the built-in authorization server (issue 16) is an identity provider of its own, in every mode
    builtin = builtin_verifier(settings) if settings.auth_server else None
    also = (builtin,) if builtin is not None else ()
    if settings.jwks_path or settings.jwks_url:
        return TokenVerifier(VerifierConfig(jwks_path=settings.jwks_path, jwks_url=settings.jwks_url,
                                            issuer=settings.token_issuer, audience=settings.token_audience,
                                            max_lifetime_seconds=settings.max_token_lifetime_seconds,
                                            break_glass_window_seconds=settings.break_glass_window_seconds),
                             also_trust=also)
    if production:
        if builtin is not None:
            return builtin
        raise ValueError("KZFHIR_ENV=production needs an identity provider: set KZFHIR_JWKS_URL or "
                         "KZFHIR_JWKS_PATH, or KZFHIR_AUTH_SERVER=true (the development key of `kzfhir token` "
                         "is never trusted in production)")
    if settings.dev_tokens:
        ensure_dev_key(settings.dev_key_path)
        config = TokenVerifier.for_development(settings.dev_key_path, **limits).config
        return TokenVerifier(config, also_trust=also)
    if builtin is not None:
        return builtin
    raise ValueError("security is enabled but no JWKS is configured and dev tokens are off: "
                     "set KZFHIR_JWKS_URL or KZFHIR_JWKS_PATH, or KZFHIR_AUTH_SERVER=true")


def development_notice(settings: Settings) -> str | None:
    """The loud line ``kzfhir serve`` prints when it trusts the development key, else None."""
    if settings.env == "production" or not settings.security_enabled or settings.jwks_path or settings.jwks_url:
        return None
    if not settings.dev_tokens:
        return None
    return msg("cli.development_mode", key=settings.dev_key_path)


def build_enforcer(settings: Settings, store: Store, matcher: ResourceMatcher | None = None) -> Enforcer:
    """``matcher``: the search engine's match of one resource (backends.resource_matcher), for SMART
    granular scopes; without it they grant nothing."""
    if not settings.security_enabled:
        return Enforcer(store, None, None)
    # the facts that decide access are read where writes commit, never from a read replica (PostgreSQL)
    facts_source: Store = getattr(store, "primary_reads", store)
    return Enforcer(store, AccessPolicy(matcher=matcher), SharedFacts(StoreFactsLoader(facts_source)))


def build_read_gate(enforcer: Enforcer, verifier: TokenVerifier | None, store: Store) -> ReadGate | None:
    """The compiled secured read by id (security/read_gate.py); None with security off."""
    if enforcer.policy is None or enforcer.facts is None or verifier is None:
        return None
    return ReadGate(enforcer.policy, enforcer.facts, verifier, store)
