"""``private_key_jwt`` client authentication (RFC 7523 §2.2, SMART Backend Services "authenticating to the
token endpoint"), on authlib's ``JWTBearerClientAssertion``: the client signs a short-lived JWT with its own
key, registered as a JWKS by the administrator; RS384 or ES384; ``iss`` = ``sub`` = client_id, ``aud`` = the
token endpoint, ``exp`` at most five minutes ahead, a ``jti`` never seen before for that client."""

from __future__ import annotations

import time
from typing import Any

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from fhir_server.identity.issuer import BACKEND_MAX_SECONDS
from fhir_server.identity.models import Client
from fhir_server.identity.registry import Registry

ASSERTION_ALGORITHMS = ["RS384", "ES384"]  # SMART Backend Services: the server SHALL support both
METHOD = "private_key_jwt"


class PrivateKeyJwt(JWTBearerClientAssertion):
    CLIENT_AUTH_METHOD = METHOD

    def __init__(self, registry: Registry, audiences: list[str], leeway: int = 30) -> None:
        super().__init__(validate_jti=True, leeway=leeway)
        self.registry = registry
        self.audiences = audiences

    def get_audiences(self) -> list[str]:
        return self.audiences

    def resolve_client_public_key(self, client: Client) -> KeySet:
        if not client.record.jwks:
            raise InvalidClientError(description="the client has no registered key set")
        return KeySet.import_key_set(client.record.jwks)  # type: ignore[arg-type]

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> dict[str, Any]:
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=ASSERTION_ALGORITHMS)
        except JoseError as error:
            raise InvalidClientError(description=f"client assertion refused: {error.description or error}") \
                from error
        claims: dict[str, Any] = token.claims
        exp = claims.get("exp")
        if isinstance(exp, int) and exp > time.time() + BACKEND_MAX_SECONDS + self.leeway:
            raise InvalidClientError(description="client assertion lives longer than five minutes")
        self.verify_claims(claims)
        return claims

    def validate_jti(self, claims: dict[str, Any], jti: Any) -> bool:
        if not isinstance(jti, str) or not jti:
            return False
        return self.registry.use_assertion(str(claims["sub"]), jti, int(claims["exp"]))
