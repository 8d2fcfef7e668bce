"""The tokens the server issues: signed JWT access tokens carrying the claims the resource server reads
(docs/security.md §1: role, fhirUser, scope, bin, patient, jti, iat, exp), and opaque refresh tokens.

The access token is self-contained, so the FHIR API verifies it like any identity provider's token; its
``jti`` is what revocation puts on the denylist (``trust.Denylist``)."""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

from joserfc import jwt

from fhir_server.identity.issuer import IdentityConfig
from fhir_server.identity.keys import ALGORITHM, SigningKeys
from fhir_server.identity.models import Client, Principal
from fhir_server.security.roles import SYSTEM

#: Scopes whose grant comes with a refresh token (SMART App Launch 2: offline and online access).
REFRESH_SCOPES = frozenset({"offline_access", "online_access"})


def fhir_user_url(config: IdentityConfig, reference: str | None) -> str | None:
    """``Practitioner/1`` as the absolute URL SMART's ``fhirUser`` names."""
    return None if reference is None else f"{config.audience}/{reference}"


class TokenIssuer:
    """Signs access tokens with the server's active key. Registered as authlib's token generator."""

    def __init__(self, config: IdentityConfig, keys: SigningKeys) -> None:
        self.config = config
        self.keys = keys

    def sign(self, claims: dict[str, Any]) -> str:
        key = self.keys.active
        return jwt.encode({"alg": ALGORITHM, "kid": key.kid, "typ": "at+jwt"}, claims, key, algorithms=[ALGORITHM])

    def __call__(self, grant_type: str, client: Client, user: Principal | None = None, scope: str | None = None,
                 expires_in: int | None = None, include_refresh_token: bool = True) -> dict[str, Any]:
        now = int(time.time())
        scope = scope or ""
        record = client.record
        claims: dict[str, Any] = {"iss": self.config.issuer, "aud": self.config.audience, "iat": now, "nbf": now,
                                  "jti": uuid.uuid4().hex, "client_id": record.client_id, "scope": scope}
        if user is None:  # client credentials: a backend service acting for its organisation (SMART Backend Services)
            lifetime = self.config.backend_seconds
            claims.update(sub=record.client_id, role=SYSTEM, bin=record.bin)
        else:
            lifetime = self.config.access_seconds
            claims.update(sub=user.user.username, role=user.user.role)
            if user.user.fhir_user:
                claims["fhirUser"] = fhir_user_url(self.config, user.user.fhir_user)
            if user.user.bin:
                claims["bin"] = user.user.bin
            if user.patient:
                claims["patient"] = user.patient.removeprefix("Patient/")
        claims["exp"] = now + lifetime
        token: dict[str, Any] = {"token_type": "Bearer", "access_token": self.sign(claims), "expires_in": lifetime,
                                 "scope": scope}
        if user is not None and user.patient:  # SMART launch context in the token response
            token["patient"] = user.patient.removeprefix("Patient/")
        if user is not None and include_refresh_token and REFRESH_SCOPES & set((user.refresh_scope or scope).split()):
            token["refresh_token"] = secrets.token_urlsafe(32)
        return token
