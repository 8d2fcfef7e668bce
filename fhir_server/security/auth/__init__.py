"""Authentication: bearer JWTs -> RequestContext, SMART scopes, development tokens (issue 5 part 1)."""

from fhir_server.security.auth.claims import context_from_claims
from fhir_server.security.auth.dev_keys import DEV_JWKS_PATH, ensure_dev_key, issue_dev_token
from fhir_server.security.auth.errors import AuthError
from fhir_server.security.auth.jwks import JwksSource
from fhir_server.security.auth.request import context_from_request
from fhir_server.security.auth.scopes import Scope, levels_allowing, parse_scope, parse_scopes, scope_allows
from fhir_server.security.auth.verifier import (
    DEV_AUDIENCE,
    DEV_ISSUER,
    TokenVerifier,
    VerifiedToken,
    VerifierConfig,
)

__all__ = [
    "DEV_AUDIENCE",
    "DEV_ISSUER",
    "DEV_JWKS_PATH",
    "AuthError",
    "JwksSource",
    "Scope",
    "TokenVerifier",
    "VerifiedToken",
    "VerifierConfig",
    "context_from_claims",
    "context_from_request",
    "ensure_dev_key",
    "issue_dev_token",
    "levels_allowing",
    "parse_scope",
    "parse_scopes",
    "scope_allows",
]
