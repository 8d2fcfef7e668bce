"""RFC 7009 revocation and RFC 7662 introspection on authlib's endpoints, for both kinds of token this
server issues: JWT access tokens (verified against the server's keys; revoking one puts its ``jti`` on the
denylist the resource server asks) and opaque refresh tokens (revoking one ends its whole chain)."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from fhir_server.identity.issuer import IdentityConfig
from fhir_server.identity.keys import ALGORITHM
from fhir_server.identity.models import AccessToken, Client, RefreshToken
from fhir_server.identity.registry import Registry
from fhir_server.identity.trust import Denylist

CLIENT_AUTH_METHODS = ["none", "private_key_jwt"]


class TokenLookup:
    registry: Registry
    denylist: Denylist
    config: IdentityConfig
    key_set: KeySet

    def find(self, token: str, hint: str | None) -> AccessToken | RefreshToken | None:
        if token.count(".") == 2 and hint != "refresh_token":
            return self._access(token)
        if hint == "access_token":
            return None
        record = self.registry.refresh(token)
        return RefreshToken(record) if record is not None else None

    def _access(self, token: str) -> AccessToken | None:
        try:
            claims = jwt.decode(token, self.key_set, algorithms=[ALGORITHM]).claims
        except (JoseError, ValueError):
            return None
        if claims.get("iss") != self.config.issuer:
            return None
        jti = claims.get("jti")
        return AccessToken(claims, isinstance(jti, str) and jti in self.denylist)


class Revocation(TokenLookup, RevocationEndpoint):
    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> AccessToken | RefreshToken | None:
        return self.find(token_string, token_type_hint)

    def revoke_token(self, token: AccessToken | RefreshToken, request: Any) -> None:
        if isinstance(token, RefreshToken):
            self.denylist.revoke_family(token.record.family)  # and its access tokens
        else:
            self.denylist.add(str(token.claims["jti"]), int(token.claims.get("exp", 0)))


class Introspection(TokenLookup, IntrospectionEndpoint):
    """Who may ask: the client the token was issued to, or a client registered with ``--introspect`` (a
    resource server)."""

    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> AccessToken | RefreshToken | None:
        return self.find(token_string, token_type_hint)

    def check_permission(self, token: AccessToken | RefreshToken, client: Client, request: Any) -> bool:
        return client.record.may_introspect or bool(token.check_client(client))

    def introspect_token(self, token: AccessToken | RefreshToken) -> dict[str, Any]:
        if isinstance(token, RefreshToken):
            record = token.record
            return {"active": True, "token_type": "refresh_token", "client_id": record.client_id,
                    "sub": record.username, "scope": record.scope, "iat": record.issued_at,
                    "exp": record.expires_at, "iss": self.config.issuer}
        names = ("iss", "aud", "sub", "client_id", "scope", "iat", "exp", "jti", "role", "fhirUser", "bin", "patient")
        body = {name: token.claims[name] for name in names if name in token.claims}
        return {"active": True, "token_type": "Bearer", **body}
