"""The objects authlib's grants and endpoints ask about (its ``ClientMixin``, ``AuthorizationCodeMixin``,
``TokenMixin``), wrapping the registry's records, and the signed-in principal a grant is made for."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin
from authlib.oidc.core import AuthorizationCodeMixin

from fhir_server.identity.registry import ClientRecord, CodeRecord, RefreshRecord, User
from fhir_server.security.auth.scopes import parse_scope

#: Scopes that are not resource permissions but that a client may be registered for and ask for.
CONTEXT_SCOPES = frozenset({"openid", "fhirUser", "profile", "launch", "launch/patient", "offline_access",
                            "online_access"})


@dataclass(frozen=True, slots=True)
class Principal:
    """Whom a grant is for: the signed-in user, their launch context and when they signed in."""

    user: User
    patient: str | None  # Patient/<id> of the launch context, or None
    auth_time: int
    family: str | None = None  # the refresh-token chain this grant continues (refresh grant)
    #: the scope of the refresh token being used: its successor keeps it, whatever the access token narrows
    #: to (RFC 6749 §6)
    refresh_scope: str | None = None


def scope_covers(registered: str, requested: str) -> bool:
    """True when a client registered for ``registered`` may be granted ``requested``: the same scope, or a
    resource scope at the same level on the same or every type with at least its permissions (a granular
    registered scope covers only itself)."""
    if registered == requested:
        return True
    have, want = parse_scope(registered), parse_scope(requested)
    if have is None or want is None or have.level != want.level or have.query is not None:
        return False
    return have.resource_type in ("*", want.resource_type) and want.permissions <= have.permissions


def allowed_scope(registered: tuple[str, ...], requested: str | None) -> str | None:
    """The requested scopes the client is registered for, in the order asked; None when none is."""
    granted = [item for item in (requested or "").split() if any(scope_covers(r, item) for r in registered)]
    return " ".join(dict.fromkeys(granted)) or None


class Client(ClientMixin):
    def __init__(self, record: ClientRecord) -> None:
        self.record = record
        self.client_id = record.client_id

    def get_client_id(self) -> str:
        return self.record.client_id

    def get_default_redirect_uri(self) -> str | None:
        uris = self.record.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        return allowed_scope(self.record.scopes, scope)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.record.redirect_uris  # exact match (RFC 9700 §4.1.3)

    def check_client_secret(self, client_secret: str) -> bool:
        return False  # no shared secrets: public clients use PKCE, confidential ones private_key_jwt

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.record.auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.record.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.record.grant_types


class AuthorizationCode(AuthorizationCodeMixin):
    def __init__(self, code: str, record: CodeRecord) -> None:
        self.code = code
        self.record = record
        self.code_challenge = record.challenge
        self.code_challenge_method = record.challenge_method

    def get_redirect_uri(self) -> str:
        return self.record.redirect_uri

    def get_scope(self) -> str:
        return self.record.scope

    def get_nonce(self) -> str | None:
        return self.record.nonce

    def get_auth_time(self) -> int:
        return self.record.auth_time

    def get_acr(self) -> str | None:
        return None

    def get_amr(self) -> list[str] | None:
        return ["pwd"]


class RefreshToken(TokenMixin):
    kind = "refresh_token"

    def __init__(self, record: RefreshRecord) -> None:
        self.record = record

    def check_client(self, client: Client) -> bool:
        return client.get_client_id() == self.record.client_id

    def get_scope(self) -> str:
        return self.record.scope

    def get_expires_in(self) -> int:
        return max(0, self.record.expires_at - int(time.time()))

    def is_expired(self) -> bool:
        return self.record.expires_at <= int(time.time())

    def is_revoked(self) -> bool:
        return self.record.revoked


class AccessToken(TokenMixin):
    """An access token this server signed (its claims verified against the server's keys)."""

    kind = "access_token"

    def __init__(self, claims: Mapping[str, Any], revoked: bool) -> None:
        self.claims = dict(claims)
        self.revoked = revoked

    def check_client(self, client: Client) -> bool:
        return bool(self.claims.get("client_id") == client.get_client_id())

    def get_scope(self) -> str:
        return str(self.claims.get("scope", ""))

    def get_expires_in(self) -> int:
        return max(0, int(self.claims.get("exp", 0)) - int(time.time()))

    def is_expired(self) -> bool:
        return int(self.claims.get("exp", 0)) <= int(time.time())

    def is_revoked(self) -> bool:
        return self.revoked
