"""The grants on authlib's core, with the SMART App Launch 2.2 rules added where authlib leaves a choice:

* authorization code: PKCE required for every client, ``S256`` only (``plain`` refused); ``aud`` must name
  this FHIR server; EHR launch (``launch``) and standalone ``launch/patient`` give the ``patient`` context;
* refresh token: rotated on every use; presenting a spent one revokes its whole chain (RFC 9700 §4.14.2);
* client credentials (SMART Backend Services): ``private_key_jwt`` only, scopes cut to the registration;
* OpenID Connect: an ``id_token`` with ``fhirUser`` when ``openid fhirUser`` is granted.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, ClassVar

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, InvalidScopeError, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode

from fhir_server.identity.issuer import CODE_SECONDS, IdentityConfig
from fhir_server.identity.keys import ALGORITHM, SigningKeys
from fhir_server.identity.models import AuthorizationCode, Client, Principal, RefreshToken
from fhir_server.identity.registry import CodeRecord
from fhir_server.identity.tokens import fhir_user_url
from fhir_server.security.policy.granular import unenforceable
from fhir_server.security.roles import PATIENT

USER_AUTH_METHODS = ["none", "private_key_jwt"]  # public apps (PKCE) and confidential asymmetric apps


class S256Only(CodeChallenge):
    """PKCE as SMART App Launch 2 requires it: always, and with ``S256`` (``plain`` is refused)."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge with code_challenge_method=S256")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256 ('plain' is not accepted)")
        super().validate_code_challenge(grant, redirect_uri)


def unenforceable_request(scope: str | None) -> str | None:
    """Why a requested SMART granular scope cannot be granted (a parameter or modifier the resource server
    cannot enforce, security/policy/granular.py), or None. Such a request is refused with ``invalid_scope``
    rather than granted a scope that would silently grant nothing (issue 16)."""
    problems = unenforceable((scope or "").split())
    return "; ".join(problems) if problems else None


def _drop(scope: str, *names: str) -> str:
    return " ".join(item for item in scope.split() if item not in names)


class SmartCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = USER_AUTH_METHODS

    def validate_authorization_request(self) -> str:
        redirect_uri: str = super().validate_authorization_request()
        data = self.request.payload.data
        if (data.get("aud") or "").rstrip("/") != self.server.config.audience:
            raise InvalidRequestError(f"aud must be this FHIR server's base URL, {self.server.config.audience}",
                                      redirect_uri=redirect_uri, state=data.get("state"))
        problem = unenforceable_request(self.request.scope)
        if problem is not None:
            raise InvalidScopeError(problem, redirect_uri=redirect_uri, state=data.get("state"))
        launch = data.get("launch")
        if launch and self.server.registry.launch_patient(launch) is None:
            raise InvalidRequestError("unknown or expired launch", redirect_uri=redirect_uri,
                                      state=data.get("state"))
        return redirect_uri

    def launch_context(self, principal: Principal) -> tuple[str, str | None]:
        """The granted scope and the patient in context. ``launch`` (EHR launch) takes the patient the EHR
        registered; ``launch/patient`` (standalone) gives a patient user themself. A context that cannot be
        given is not granted (a practitioner's standalone patient picker is not built yet)."""
        scope = self.request.scope or ""
        granted = set(scope.split())
        launch = self.request.payload.data.get("launch")
        patient = principal.patient
        if "launch" in granted and launch:
            patient = self.server.registry.launch_patient(launch)
        else:
            scope = _drop(scope, "launch")
        if patient is None and "launch/patient" in granted and principal.user.role == PATIENT:
            patient = principal.user.fhir_user
        if patient is None:
            scope = _drop(scope, "launch/patient")
        return scope, patient

    def save_authorization_code(self, code: str, request: Any) -> None:
        principal: Principal = request.user
        scope, patient = self.launch_context(principal)
        data = request.payload.data
        self.server.registry.save_code(code, CodeRecord(
            client_id=request.client.get_client_id(), username=principal.user.username,
            redirect_uri=data.get("redirect_uri") or request.client.get_default_redirect_uri(), scope=scope,
            challenge=data.get("code_challenge"), challenge_method=data.get("code_challenge_method"),
            nonce=data.get("nonce"), patient=patient, auth_time=principal.auth_time,
            expires_at=int(time.time()) + CODE_SECONDS))

    def query_authorization_code(self, code: str, client: Client) -> AuthorizationCode | None:
        record = self.server.registry.take_code(code)  # single use, even when a later check fails
        if record is None or record.client_id != client.get_client_id():
            return None
        return AuthorizationCode(code, record)

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        pass  # already taken by query_authorization_code

    def authenticate_user(self, authorization_code: AuthorizationCode) -> Principal | None:
        record = authorization_code.record
        user = self.server.registry.user(record.username)
        if user is None or user.disabled:
            return None
        return Principal(user, record.patient, record.auth_time)


class SmartOpenIDCode(OpenIDCode):
    """``id_token`` for ``openid``; ``fhirUser`` in it when that scope is granted (SMART App Launch 2)."""

    def __init__(self, config: IdentityConfig, keys: SigningKeys) -> None:
        super().__init__(require_nonce=False)
        self.config = config
        self.keys = keys
        self.DEFAULT_EXPIRES_IN = config.access_seconds

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        return False  # a nonce is the client's replay check of its id_token; codes themselves are single use

    def resolve_client_private_key(self, client: Client) -> Any:
        return self.keys.active

    def get_client_algorithm(self, client: Client) -> str:
        return ALGORITHM

    def get_encode_header(self, client: Client) -> dict[str, str]:
        return {"alg": ALGORITHM, "kid": str(self.keys.active.kid)}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        return {"iss": self.config.issuer, "aud": [client.get_client_id()]}

    def generate_user_info(self, user: Principal, scope: str) -> dict[str, Any]:
        info: dict[str, Any] = {"sub": user.user.username}
        if "fhirUser" in scope.split() and user.user.fhir_user:
            info["fhirUser"] = fhir_user_url(self.config, user.user.fhir_user)
        return info


class RotatingRefreshGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = USER_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshToken | None:
        record = self.server.registry.refresh(refresh_token)
        if record is None:
            return None
        if record.revoked:
            # a spent token presented again: it was stolen or replayed; end the whole sign-in
            self.server.denylist.revoke_family(record.family)
            return None
        if record.expires_at <= int(time.time()):
            return None
        return RefreshToken(record)

    def validate_token_request(self) -> None:
        super().validate_token_request()
        if not self.server.registry.revoke_refresh(self.request.refresh_token.record.digest):
            raise InvalidGrantError("refresh token already used")  # a concurrent refresh won the race

    def authenticate_user(self, refresh_token: RefreshToken) -> Principal | None:
        record = refresh_token.record
        user = self.server.registry.user(record.username)
        if user is None or user.disabled:
            return None
        return Principal(user, record.patient, record.auth_time, family=record.family, refresh_scope=record.scope)

    def revoke_old_credential(self, refresh_token: RefreshToken) -> None:
        pass  # spent in validate_token_request, before the new token was issued


class BackendServicesGrant(grants.ClientCredentialsGrant):
    """SMART Backend Services: a registered client signs an assertion; the token acts for its organisation."""

    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["private_key_jwt"]

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client: Client = self.request.client
        if not client.record.bin:
            raise InvalidGrantError("the client is registered without an organisation (BIN)")
        problem = unenforceable_request(self.request.payload.scope)
        if problem is not None:
            raise InvalidScopeError(problem)
        scope = client.get_allowed_scope(self.request.payload.scope)
        if scope is None:
            raise InvalidScopeError("none of the requested scopes is registered for this client")
        token = self.generate_token(scope=scope, include_refresh_token=False)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


def new_family() -> str:
    return uuid.uuid4().hex
