"""Bearer JWT verification (issue 5 part 1): signature, algorithm, issuer, audience, lifetime.

RS256 and ES256 tokens are verified against the configured JWKS. HS256 exists only for
development and only when ``dev_mode`` is on *and* a shared secret is configured; ``none`` is
never accepted. The algorithm is chosen by the configuration, never by the token: a token's
``alg`` header only selects among the algorithms the server already allows, and an HMAC token is
checked only against the dev secret, so a public RSA/EC key can never be misused as an HMAC
secret (the classic algorithm-confusion attack).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import Key, KeySet, OctKey
from joserfc.jws import extract_compact

from fhir_server.i18n import msg
from fhir_server.security.auth.claims import context_from_claims
from fhir_server.security.auth.errors import AuthError
from fhir_server.security.auth.jwks import JwksSource
from fhir_server.security.context import RequestContext

ASYMMETRIC = {"RS256": "RSA", "ES256": "EC"}
DEV_ISSUER = "urn:kzfhir:dev"
DEV_AUDIENCE = "kzfhir"


@dataclass(frozen=True, slots=True)
class VerifierConfig:
    """What the server trusts. Exactly one of ``jwks_path`` / ``jwks_url``."""

    jwks_path: Path | None = None
    jwks_url: str | None = None
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    issuer: str | None = None
    audience: str | None = None
    leeway_seconds: int = 30
    jwks_ttl_seconds: float = 300.0
    #: Earliest re-read of the JWKS when a token names an unknown key id (rotation, rate-limited).
    jwks_min_refresh_seconds: float = 10.0
    dev_mode: bool = False
    dev_hs256_secret: bytes | None = None
    #: How long an ``X-Break-Glass-Reason`` header is honoured after the token was issued (AC-02).
    break_glass_window_seconds: int = 3600
    #: The longest a token may live (issue 10 §6): ``exp - iat``, or ``exp - now`` without ``iat``.
    max_lifetime_seconds: int = 3600
    max_token_bytes: int = 16_384

    def __post_init__(self) -> None:
        unknown = set(self.algorithms) - set(ASYMMETRIC) - {"HS256"}
        if unknown:
            raise ValueError(f"unsupported JWT algorithms: {sorted(unknown)}")
        if "HS256" in self.algorithms and not (self.dev_mode and self.dev_hs256_secret):
            raise ValueError("HS256 is for development only: it needs dev_mode and a dev_hs256_secret")


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A verified token: the caller's context plus the lifetime the header rules need."""

    context: RequestContext
    claims: Mapping[str, Any]
    issued_at: int | None
    expires_at: int
    #: When the token counts as issued for time windows: ``iat``, or without it the earliest issue
    #: its lifetime allows (``exp - max_lifetime``), so a window never outlives its rule (AC-02).
    issued_for_windows: int = 0


VERIFIED_CACHE_SIZE = 10_000
VERIFIED_CACHE_SECONDS = 300.0  # also bounds how long a key removed from the JWKS keeps working


class TokenVerifier:
    """Verifies bearer tokens; ``verify`` is the one call the HTTP layer makes."""

    def __init__(
        self,
        config: VerifierConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        also_trust: Sequence[TokenVerifier] = (),
        is_revoked: Callable[[str], bool] | None = None,
    ) -> None:
        """``also_trust``: verifiers of further issuers (the built-in authorization server, issue 16); a token
        whose ``iss`` names one of them is verified by it alone, against its keys, issuer and audience.
        ``is_revoked``: a denylist of token ids (``jti``), asked on every use of a token, remembered or not."""
        self.config = config
        self._clock = clock
        self._also = {verifier.config.issuer: verifier for verifier in also_trust if verifier.config.issuer}
        self._is_revoked = is_revoked
        self._verified: dict[str, tuple[float, VerifiedToken]] = {}
        self._jwks = JwksSource(
            path=config.jwks_path,
            url=config.jwks_url,
            ttl_seconds=config.jwks_ttl_seconds,
            min_refresh_seconds=config.jwks_min_refresh_seconds,
            transport=transport,
        )

    @classmethod
    def for_development(cls, key_path: Path, **overrides: Any) -> TokenVerifier:
        """Trust the local development key (``kzfhir token``), with the dev issuer and audience."""
        config = VerifierConfig(jwks_path=key_path, issuer=DEV_ISSUER, audience=DEV_AUDIENCE, **overrides)
        return cls(config)

    async def verify(self, token: str) -> RequestContext:
        """The caller's RequestContext, or AuthError (-> 401) for any token that is not valid."""
        return (await self.verify_token(token)).context

    async def verify_token(self, token: str) -> VerifiedToken:
        """Like ``verify`` but also returns the claims and lifetime (used for header rules).

        A token whose signature was verified is remembered (bounded, for at most
        ``VERIFIED_CACHE_SECONDS``): the signature check is the most expensive step of a request and
        clients reuse a token for many requests. The time-dependent claims (exp, nbf) are re-checked on
        every use, so an expired token is refused even when remembered.
        """
        if not token or len(token) > self.config.max_token_bytes or token.count(".") != 2:
            raise AuthError(msg("auth.malformed_token"))
        now = self._clock()
        cached = self._verified.get(token)
        if cached is not None and cached[0] > now:
            self._check_claims(dict(cached[1].claims))
            self._check_revoked(cached[1].claims)
            return cached[1]
        delegate = self._delegate(token)
        if delegate is not None:
            return await delegate.verify_token(token)
        alg, kid = self._header(token)
        claims = await self._verified_claims(token, alg, kid)
        self._check_claims(claims)
        self._check_revoked(claims)
        context = context_from_claims(claims)
        iat = claims.get("iat")
        issued = int(iat) if iat is not None else None
        expires = int(claims["exp"])
        verified = VerifiedToken(context, claims, issued, expires,
                                 issued if issued is not None else expires - self.config.max_lifetime_seconds)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (now + VERIFIED_CACHE_SECONDS, verified)
        return verified

    def _delegate(self, token: str) -> TokenVerifier | None:
        """The verifier of the issuer the (not yet verified) token names, when it is one of ``also_trust``.
        Only routing: that verifier checks the signature against its own keys and the ``iss`` again."""
        if not self._also:
            return None
        try:
            payload = json.loads(extract_compact(token.encode("ascii")).payload)
        except (JoseError, ValueError, UnicodeError) as error:
            raise AuthError(msg("auth.malformed_token")) from error
        issuer = payload.get("iss") if isinstance(payload, dict) else None
        return self._also.get(issuer) if isinstance(issuer, str) else None

    def revocation_check(self, token: VerifiedToken) -> Callable[[], bool] | None:
        """For a cache of verified callers (security/read_gate.py): a call telling whether this token has
        been revoked since, or None when its issuer keeps no denylist (nothing to ask)."""
        issuer, jti = token.claims.get("iss"), token.claims.get("jti")
        verifier = self._also.get(issuer, self) if isinstance(issuer, str) else self
        check = verifier._is_revoked
        if check is None or not isinstance(jti, str):
            return None
        return lambda: check(jti)

    def _check_revoked(self, claims: Mapping[str, Any]) -> None:
        jti = claims.get("jti")
        if self._is_revoked is not None and isinstance(jti, str) and self._is_revoked(jti):
            raise AuthError(msg("auth.revoked"))

    def _header(self, token: str) -> tuple[str, str | None]:
        try:
            header = extract_compact(token.encode("ascii")).headers()
        except (JoseError, ValueError, UnicodeError) as error:
            raise AuthError(msg("auth.malformed_token")) from error
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in self.config.algorithms:
            raise AuthError(msg("auth.algorithm", alg=alg))
        return alg, kid if isinstance(kid, str) else None

    async def _verified_claims(self, token: str, alg: str, kid: str | None) -> dict[str, Any]:
        for key in await self._candidate_keys(alg, kid):
            try:
                return jwt.decode(token, key, algorithms=[alg]).claims
            except BadSignatureError:
                continue
            except JoseError as error:
                raise AuthError(msg("auth.malformed_token")) from error
        raise AuthError(msg("auth.bad_signature"))

    async def _candidate_keys(self, alg: str, kid: str | None) -> list[Key]:
        if alg == "HS256":
            assert self.config.dev_hs256_secret is not None
            return [OctKey.import_key(self.config.dev_hs256_secret)]
        keys = await self._jwks.key_set()
        if kid is not None:
            found = _by_kid(keys, kid) or _by_kid(await self._jwks.key_set(refresh=True), kid)
            if found is None:
                raise AuthError(msg("auth.unknown_key"))
            return [found] if found.key_type == ASYMMETRIC[alg] else []
        return [key for key in keys.keys if key.key_type == ASYMMETRIC[alg]]

    def _check_claims(self, claims: dict[str, Any]) -> None:
        options: dict[str, Any] = {"exp": {"essential": True}}
        if self.config.issuer is not None:
            options["iss"] = {"essential": True, "value": self.config.issuer}
        if self.config.audience is not None:
            options["aud"] = {"essential": True, "value": self.config.audience}
        registry = jwt.JWTClaimsRegistry(now=int(self._clock()), leeway=self.config.leeway_seconds, **options)
        try:
            registry.validate(claims)
            self._check_lifetime(claims)
        except ExpiredTokenError as error:
            raise AuthError(msg("auth.expired")) from error
        except MissingClaimError as error:
            raise AuthError(f"token lacks required claim(s): {error.claim}") from error
        except ClaimError as error:
            raise AuthError(f"token claim {error.claim!r} is not acceptable: {error.description}") from error

    def _check_lifetime(self, claims: Mapping[str, Any]) -> None:
        """Refuse tokens that live longer than the configured maximum (issue 10 §6): a stolen
        long-lived token is a standing key to patients' data."""
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise AuthError("token claim 'exp' is not acceptable: not a number")
        if iat is not None and (not isinstance(iat, int | float) or isinstance(iat, bool)):
            raise AuthError("token claim 'iat' is not acceptable: not a number")
        start = iat if iat is not None else self._clock()
        limit = self.config.max_lifetime_seconds + self.config.leeway_seconds
        if exp - start > limit:
            raise AuthError(msg("auth.lifetime", seconds=self.config.max_lifetime_seconds))
        if iat is not None and iat > self._clock() + self.config.leeway_seconds:
            raise AuthError("token claim 'iat' is not acceptable: issued in the future")


def _by_kid(keys: KeySet, kid: str) -> Key | None:
    try:
        return keys.get_by_kid(kid)
    except InvalidKeyIdError:
        return None
