"""authlib's ``AuthorizationServer`` wired to the registry, the keys and the grants, with the small framework
adapter authlib asks of every integration (``create_oauth2_request``, ``handle_response``): requests arrive
here already parsed (``FormRequest``) and responses leave as ``(status, body, headers)`` for routes.py."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from authlib.oauth2.rfc6749 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749.requests import OAuth2Payload
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

from fhir_server.identity.client_auth import METHOD, PrivateKeyJwt
from fhir_server.identity.endpoints import Introspection, Revocation
from fhir_server.identity.grants import (
    BackendServicesGrant,
    RotatingRefreshGrant,
    S256Only,
    SmartCodeGrant,
    SmartOpenIDCode,
    new_family,
)
from fhir_server.identity.issuer import IdentityConfig
from fhir_server.identity.keys import SigningKeys
from fhir_server.identity.models import Client, Principal
from fhir_server.identity.registry import RefreshRecord, Registry
from fhir_server.identity.tokens import TokenIssuer
from fhir_server.identity.trust import Denylist

Response = tuple[int, Any, list[tuple[str, str]]]


class Payload(OAuth2Payload):
    """Parameters with every value kept, so authlib's "parameter sent twice" checks see repeats."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for name, value in pairs:
            self._datalist[name].append(value)
        self._data = {name: values[0] for name, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class FormRequest(OAuth2Request):
    """One parsed HTTP request: the query (authorize) or the form body (token, revoke, introspect)."""

    def __init__(self, method: str, uri: str, pairs: Sequence[tuple[str, str]], headers: Mapping[str, str],
                 *, allow_http: bool = False) -> None:
        parts = urlsplit(uri)
        checked = urlunsplit(("https", *parts[1:])) if allow_http and parts.scheme == "http" else uri
        super().__init__(method, checked, headers=dict(headers))  # authlib refuses http off loopback
        self.uri = uri
        self.payload = Payload(pairs)
        self._form = self.payload.data if method == "POST" else {}

    @property
    def args(self) -> dict[str, str]:
        return self.payload.data if self.method == "GET" else {}

    @property
    def form(self) -> dict[str, str]:
        return dict(self._form)


class SmartAuthorizationServer(AuthorizationServer):
    def __init__(self, config: IdentityConfig, registry: Registry, keys: SigningKeys, denylist: Denylist) -> None:
        super().__init__(scopes_supported=None)
        self.config, self.registry, self.keys, self.denylist = config, registry, keys, denylist
        self.register_token_generator("default", TokenIssuer(config, keys))
        self.register_client_auth_method(METHOD, PrivateKeyJwt(registry, [config.token_endpoint]))
        self.register_grant(SmartCodeGrant, [S256Only(required=True), SmartOpenIDCode(config, keys)])
        self.register_grant(RotatingRefreshGrant)
        self.register_grant(BackendServicesGrant)
        key_set = KeySet.import_key_set(keys.public_jwks())  # type: ignore[arg-type]
        for endpoint_class in (Revocation, Introspection):
            endpoint = endpoint_class(self)
            endpoint.registry, endpoint.denylist = registry, denylist
            endpoint.config, endpoint.key_set = config, key_set
            self.register_endpoint(endpoint)

    # -- what authlib asks of an integration --------------------------------------------------------------
    def query_client(self, client_id: str) -> Client | None:
        record = self.registry.client(client_id) if isinstance(client_id, str) else None
        return Client(record) if record is not None and not record.disabled else None

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        refresh = token.get("refresh_token")
        principal = request.user
        if not refresh or not isinstance(principal, Principal):
            return
        now = int(time.time())
        family = principal.family or new_family()
        claims = json.loads(extract_compact(str(token["access_token"]).encode("ascii")).payload)
        # the access token belongs to the chain: revoking the refresh token revokes it too (RFC 7009 §2.1)
        self.registry.add_family_token(family, str(claims["jti"]), int(claims["exp"]))
        self.registry.save_refresh(refresh, RefreshRecord(
            digest="", family=family, client_id=request.client.get_client_id(),
            username=principal.user.username, scope=principal.refresh_scope or str(token.get("scope", "")),
            patient=principal.patient,
            auth_time=principal.auth_time, issued_at=now, expires_at=now + self.config.refresh_seconds,
            revoked=False))

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if not isinstance(request, OAuth2Request):
            raise TypeError("requests reach the authorization server parsed (FormRequest)")
        return request

    def create_json_request(self, request: Any) -> Any:
        raise NotImplementedError("no JSON endpoints")

    def handle_response(self, status: int, body: Any, headers: Any) -> Response:
        return status, body, list(headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None
