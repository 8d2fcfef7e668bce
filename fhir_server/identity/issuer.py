"""What the built-in authorization server needs from the settings, resolved once (paths, URLs, lifetimes)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fhir_server.config import Settings

#: SMART Backend Services: "the access token ... SHALL have a lifetime no greater than five minutes".
BACKEND_MAX_SECONDS = 300
#: RFC 6749 §4.1.2 recommends at most ten minutes for a code; one minute is plenty for a redirect.
CODE_SECONDS = 60
#: An EHR launch context (``launch``) is good for this long after the EHR registered it.
LAUNCH_SECONDS = 300
#: A signed-in person has this long to answer the consent screen or to come back from an external IdP.
PENDING_SECONDS = 600


@dataclass(frozen=True, slots=True)
class IdentityConfig:
    issuer: str  # e.g. https://fhir.example.kz/auth (the endpoints live under it)
    audience: str  # the FHIR base URL: the `aud` of every access token, and what apps must send as `aud`
    key_path: Path
    database: Path
    access_seconds: int
    backend_seconds: int
    refresh_seconds: int
    allow_http: bool
    max_failures_per_user: int = 5
    max_failures_per_ip: int = 30
    failure_window_seconds: int = 900

    @property
    def secure_cookies(self) -> bool:
        return self.issuer.startswith("https://")

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/token"

    @classmethod
    def from_settings(cls, settings: Settings) -> IdentityConfig:
        production = settings.env == "production"
        base = (settings.base_url or "").rstrip("/")
        if not base:
            if production:
                raise ValueError("KZFHIR_AUTH_SERVER=true in production needs KZFHIR_BASE_URL (the public https URL "
                                 "apps and tokens name as the FHIR server)")
            base = f"http://{settings.host}:{settings.port}"
        issuer = (settings.auth_issuer or f"{base}/auth").rstrip("/")
        if settings.auth_allow_http and production:
            raise ValueError("KZFHIR_AUTH_ALLOW_HTTP is for tests and demos: refused with KZFHIR_ENV=production")
        if production and not issuer.startswith("https://"):
            raise ValueError(f"the authorization server's issuer must be an https URL in production, not {issuer}")
        if settings.auth_backend_token_seconds > BACKEND_MAX_SECONDS:
            raise ValueError(f"KZFHIR_AUTH_BACKEND_TOKEN_SECONDS: SMART Backend Services tokens live at most "
                             f"{BACKEND_MAX_SECONDS} s")
        # beside a SQLite file; for a PostgreSQL URL in data/ (or KZFHIR_AUTH_KEY_PATH / KZFHIR_AUTH_DATABASE)
        database = settings.database if isinstance(settings.database, Path) else Path("data/kzfhir")
        folder = database.parent
        # a token lives at most as long as the resource server accepts (issue 10 §6)
        ceiling = settings.max_token_lifetime_seconds
        return cls(
            issuer=issuer,
            audience=base,
            key_path=settings.auth_key_path or folder / "auth-jwks.json",
            database=settings.auth_database or folder / f"{database.stem}-identity.sqlite",
            access_seconds=min(settings.auth_access_token_seconds, ceiling),
            backend_seconds=min(settings.auth_backend_token_seconds, ceiling),
            refresh_seconds=settings.auth_refresh_token_seconds,
            allow_http=settings.auth_allow_http,
            max_failures_per_user=settings.auth_signin_max_failures_per_user,
            max_failures_per_ip=settings.auth_signin_max_failures_per_ip,
            failure_window_seconds=settings.auth_signin_failure_window_seconds,
        )
