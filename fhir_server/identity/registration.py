"""What an administrator registers, checked before it is stored: a user's role must fit their fhirUser and
BIN by the same rules the resource server applies to tokens (security/auth/claims.py), so the server never
signs a token it would itself refuse; a client's redirect URIs, key set and grants must fit together."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from fhir_server.identity.client_auth import METHOD
from fhir_server.identity.passwords import hash_password
from fhir_server.identity.registry import ClientRecord, User
from fhir_server.security.auth.claims import context_from_claims
from fhir_server.security.auth.errors import AuthError
from fhir_server.security.policy.granular import unenforceable
from fhir_server.security.refs import is_bin, relative_ref

PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "k"})


def new_user(username: str, password: str, role: str, fhir_user: str | None, bin: str | None, *,
             iin: str | None = None) -> User:
    if not username or len(username) > 128 or any(ch.isspace() for ch in username):
        raise ValueError("a username is 1-128 characters without spaces")
    reference = relative_ref(fhir_user) if fhir_user else None
    if fhir_user and reference is None:
        raise ValueError(f"fhirUser must be a reference such as Practitioner/1, not {fhir_user!r}")
    claims: dict[str, Any] = {"sub": username, "role": role, "exp": int(time.time()) + 60}
    if reference:
        claims["fhirUser"] = reference
    if bin:
        claims["bin"] = bin
    try:
        context_from_claims(claims)
    except AuthError as error:
        raise ValueError(str(error)) from error
    if iin is not None and not (len(iin) == 12 and iin.isdigit()):
        raise ValueError(f"an IIN is 12 digits, not {iin!r}")
    return User(username, hash_password(password), reference, role, bin, iin=iin)


def _redirect_uri(uri: str) -> str:
    parts = urlsplit(uri)
    loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.fragment or not parts.netloc or parts.scheme not in ("https", "http") or (
            parts.scheme == "http" and not loopback):
        raise ValueError(f"redirect URI {uri!r}: https (or http on a loopback address), without a fragment")
    return uri


def public_jwks(jwks: Any) -> dict[str, Any]:
    """The client's key set, checked to hold only public RS/EC keys (a private key sent by mistake is refused:
    the administrator should not be holding it)."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise ValueError("a client key set is a JWKS: an object with a non-empty 'keys' array")
    for key in jwks["keys"]:
        if not isinstance(key, dict) or key.get("kty") not in ("RSA", "EC"):
            raise ValueError("client keys must be RSA or EC public keys")
        if PRIVATE_MEMBERS & set(key):
            raise ValueError("the key set holds a private key: register the public key only")
    try:
        keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError) as error:
        raise ValueError(f"invalid JWKS: {error}") from error
    for key in keys.keys:  # assertions name their key: a key without a kid gets its RFC 7638 thumbprint
        key.ensure_kid()
    return {"keys": [key.as_dict(private=False) for key in keys.keys]}


def new_client(client_id: str, name: str, *, redirect_uris: Sequence[str] = (), scopes: Sequence[str] = (),
               jwks: Any = None, bin: str | None = None, grant_types: Sequence[str] | None = None,
               may_introspect: bool = False) -> ClientRecord:
    if not client_id or len(client_id) > 128 or any(ch.isspace() for ch in client_id):
        raise ValueError("a client id is 1-128 characters without spaces")
    if bin is not None and not is_bin(bin):
        raise ValueError("the organisation's BIN has 12 digits")
    uris = tuple(_redirect_uri(uri) for uri in redirect_uris)
    keys = public_jwks(jwks) if jwks is not None else None
    if grant_types is None:
        grants = (["authorization_code", "refresh_token"] if uris else []) + (["client_credentials"] if bin else [])
    else:
        grants = list(grant_types)
    unknown = set(grants) - {"authorization_code", "refresh_token", "client_credentials"}
    if unknown or not grants:
        raise ValueError(f"grant types: authorization_code, refresh_token, client_credentials (got {grants})")
    if "authorization_code" in grants and not uris:
        raise ValueError("an app that signs users in needs at least one --redirect-uri")
    if "client_credentials" in grants and (keys is None or bin is None):
        raise ValueError("a backend service needs its public key set (--jwks) and its organisation (--bin)")
    if not scopes:
        raise ValueError("register at least one scope the client may be granted")
    problems = unenforceable(scopes)  # a granular scope the resource server could not enforce (issue 16)
    if problems:
        raise ValueError("; ".join(problems))
    return ClientRecord(client_id, name, METHOD if keys is not None else "none", uris, tuple(scopes),
                        tuple(dict.fromkeys(grants)), keys, bin, may_introspect)
