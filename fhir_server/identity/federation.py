"""Sign-in through an external OpenID Connect provider: the national eGov IdP in production (issue 16 §3).

The sign-in page's button sends the person to the provider with the authorization code flow, PKCE (S256), a
``nonce`` and a ``state`` (OpenID Connect Core 1.0 §3.1; RFC 9700 §2.1.1). The provider's endpoints and keys
come from its discovery document and JWKS. Its callback (``/auth/federation/callback``) spends the state
(single use, bound to the browser's sign-in cookie, so a callback cannot be replayed into another browser),
exchanges the code with this server's client credentials (``client_secret_basic``) and the PKCE verifier,
and validates the ``id_token`` with joserfc: signature by a key of the provider's JWKS (re-read for an
unknown ``kid``), ``iss``, ``aud`` naming this client, ``azp`` when there are several audiences, ``exp``,
``iat`` and the ``nonce``. The IIN claim (``KZFHIR_AUTH_OIDC_IIN_CLAIM``) then names the user as in EDS
sign-in: the user registered with that IIN, or the user of the Patient/Practitioner carrying it."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from fhir_server.identity.issuer import PENDING_SECONDS
from fhir_server.identity.registry import Registry, User
from fhir_server.identity.signin import SignInError

ALGORITHMS = ("RS256", "RS384", "ES256", "ES384", "PS256")  # asymmetric only: no HS256 with the client secret
LEEWAY = 60
HTTP_SECONDS = 10.0
DISCOVERY_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    issuer: str
    client_id: str
    client_secret: str
    iin_claim: str
    title: str
    redirect_uri: str  # this server's callback, registered at the provider


@dataclass(frozen=True, slots=True)
class Completed:
    user: User | None
    iin: str
    pairs: list[tuple[str, str]]  # the app's authorization request, as it came to /authorize


class OidcFederation:
    """A ``SignInMethod`` whose form is a button: ``begin`` redirects to the provider, ``complete`` (the
    callback) turns its answer into a user. ``sign_in`` is not used for it."""

    name = "oidc"

    def __init__(self, provider: ProviderConfig, registry: Registry, client: httpx.Client | None = None) -> None:
        self.provider, self.registry = provider, registry
        self.title = f"Sign in with {provider.title}"
        self.http = client or httpx.Client(timeout=HTTP_SECONDS, follow_redirects=False)
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None

    def form_fields(self) -> str:
        return "<p>You will be sent to the identity provider and back.</p>"

    def sign_in(self, fields: Mapping[str, str]) -> User:
        raise SignInError("Use the identity provider's button.")

    # -- the provider's metadata and keys -----------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        with self._lock:
            if self._metadata is None or time.monotonic() - self._metadata_at > DISCOVERY_SECONDS:
                url = f"{self.provider.issuer.rstrip('/')}/.well-known/openid-configuration"
                document = self._get_json(url)
                if document.get("issuer") != self.provider.issuer:  # OpenID Connect Discovery §4.3
                    raise SignInError("The identity provider's discovery document names another issuer.")
                for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                    if not isinstance(document.get(name), str):
                        raise SignInError(f"The identity provider's discovery document has no {name}.")
                self._metadata, self._metadata_at, self._keys = document, time.monotonic(), None
            return self._metadata

    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = self.http.get(url, headers={"Accept": "application/json"})
            body = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as error:
            raise SignInError("The identity provider cannot be reached. Please try again later.") from error
        if not isinstance(body, dict):
            raise SignInError("The identity provider answered unexpectedly.")
        return body

    def key_set(self, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            try:
                self._keys = KeySet.import_key_set(self._get_json(self.metadata()["jwks_uri"]))  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError) as error:
                raise SignInError("The identity provider's keys are unreadable.") from error
        return self._keys

    # -- there ----------------------------------------------------------------------------------------------
    def begin(self, pairs: list[tuple[str, str]], browser: str) -> str:
        """Remember the app's request under a fresh ``state`` and return the provider's authorization URL."""
        endpoint = self.metadata()["authorization_endpoint"]
        state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48)
        self.registry.save_pending(state, "federation", {"pairs": pairs, "nonce": nonce, "verifier": verifier,
                                                         "browser": browser}, int(time.time()) + PENDING_SECONDS)
        query = urlencode({"response_type": "code", "client_id": self.provider.client_id,
                           "redirect_uri": self.provider.redirect_uri, "scope": "openid", "state": state,
                           "nonce": nonce, "code_challenge": create_s256_code_challenge(verifier),
                           "code_challenge_method": "S256"})
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    # -- and back -------------------------------------------------------------------------------------------
    def pending(self, state: str, browser: str) -> dict[str, Any]:
        record = self.registry.take_pending(state, "federation") if state else None
        if record is None or record.get("browser") != browser:
            raise SignInError("This sign-in was already completed, has expired or began in another browser.")
        return record

    def complete(self, record: dict[str, Any], code: str) -> Completed:
        pairs = [(str(k), str(v)) for k, v in record["pairs"]]
        claims = self._id_token(self._exchange(code, record["verifier"]), record["nonce"])
        iin = str(claims.get(self.provider.iin_claim) or "").removeprefix("IIN")
        if not (len(iin) == 12 and iin.isdigit()):
            raise SignInError("The identity provider did not name an IIN.")
        user = self.registry.user_by(iin=iin)
        if user is not None and user.disabled:
            raise SignInError("This account cannot sign in.")
        return Completed(user, iin, pairs)

    def _exchange(self, code: str, verifier: str) -> str:
        try:
            response = self.http.post(self.metadata()["token_endpoint"], data={
                "grant_type": "authorization_code", "code": code, "redirect_uri": self.provider.redirect_uri,
                "code_verifier": verifier}, auth=(self.provider.client_id, self.provider.client_secret),
                headers={"Accept": "application/json"})
            body = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise SignInError("The identity provider cannot be reached. Please try again later.") from error
        if response.status_code != 200 or not isinstance(body, dict) or not isinstance(body.get("id_token"), str):
            raise SignInError("The identity provider refused the sign-in.")
        return str(body["id_token"])

    def _id_token(self, token: str, nonce: str) -> dict[str, Any]:
        try:
            try:
                decoded = jwt.decode(token, self.key_set(), algorithms=list(ALGORITHMS))
            except JoseError:  # perhaps a rotated key: read the JWKS again once
                decoded = jwt.decode(token, self.key_set(refresh=True), algorithms=list(ALGORITHMS))
            claims = decoded.claims
            jwt.JWTClaimsRegistry(
                leeway=LEEWAY, iss={"essential": True, "value": self.provider.issuer},
                aud={"essential": True, "value": self.provider.client_id}, exp={"essential": True},
                iat={"essential": True}, sub={"essential": True}, nonce={"essential": True, "value": nonce},
            ).validate(claims)
        except (JoseError, ValueError, TypeError) as error:
            raise SignInError("The identity provider's answer could not be verified.") from error
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.provider.client_id:  # OIDC Core §3.1.3.7
            raise SignInError("The identity provider's answer was meant for another client.")
        return dict(claims)

