"""Settings in one place (pydantic-settings): environment variables prefixed ``KZFHIR_``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def database_location(value: object) -> object:
    """``--database`` / ``KZFHIR_DATABASE``: a ``postgresql://`` (or ``postgres://``) URL stays text; a
    ``sqlite:///path`` URL and anything else is a SQLite file path."""
    if isinstance(value, str):
        if value.startswith(("postgresql://", "postgres://")):
            return value
        return Path(value.removeprefix("sqlite://")) if value.startswith("sqlite:///") else Path(value)
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KZFHIR_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535, description="TCP port `kzfhir serve` listens on")
    database: Path | str = Field(
        default=Path("data/kzfhir.sqlite"),
        description="the store: a SQLite database file (a path, or sqlite:///path), or a PostgreSQL database "
        "(postgresql://user@host:port/dbname, a libpq URL; docs/postgres.md)",
    )
    base_url: str | None = Field(
        default=None, description="Public base URL; derived from the request when not set"
    )
    max_body_bytes: int = Field(default=50 * 1024 * 1024, description="Request bodies above this get 413")
    allow_multiple_conditional_delete: bool = Field(
        default=False, description="Conditional delete of several matches (FHIR R4 http.html#3.1.0.7.1)"
    )
    max_conditional_delete: int = 100
    timezone: str = Field(
        default="+05:00", pattern=r"^(Z|[+-]\d{2}:\d{2})$",
        description="the zone of FHIR dates and times that carry none (a birthDate, a Consent period.end): "
        "one rule for search, history, the access policy and the audit (fhir_server/fhirtime.py); "
        "Kazakhstan's UTC+05:00 by default",
    )
    update_as_create: str = Field(
        default="directory", pattern="^(directory|all)$",
        description="PUT to an unused id creates the resource (R4 update as create). Under the access policy, "
        "directory: only for resources that are not patient data (patient data with a client-chosen id would "
        "reveal whether the id is taken by data the caller may not see: 405); all: any resource "
        "(docs/security.md). Open mode always allows it",
    )
    default_page_size: int = Field(default=50, description="_count when a search or history asks none")
    max_page_size: int = Field(default=1000, description="the largest page a search or history returns")
    validate_on_write: bool = True
    require_kz_profiles: bool = Field(
        default=False,
        description="National strict mode: the KZ profiles are mandatory for their ten resource types "
        "(docs/kz-ig.md); the default is a general R4 server",
    )
    relaxed_iin: bool = Field(
        default=False, description="Accept 12-digit IINs/BINs failing date/checksum rules (NCA test certificates)"
    )
    validate_invariants_on_write: bool = Field(
        default=False,
        description="Also run the R4 core FHIRPath invariants on writes of resources that declare no profile "
        "(they always run for profiled resources and in $validate)",
    )
    # -- security (issue 5; docs/security.md) --
    env: str = Field(
        default="development", pattern="^(development|production)$",
        description="development: `kzfhir token`'s local key is trusted when no JWKS is configured, and the "
        "server says so at start. production: the server refuses to start without a configured identity "
        "provider (KZFHIR_JWKS_URL or KZFHIR_JWKS_PATH) or with security off, and never trusts the "
        "development key (issue 10 §6)",
    )
    max_token_lifetime_seconds: int = Field(
        default=3600, ge=60, le=86_400,
        description="tokens living longer than this (exp - iat; exp - now when a token has no iat) get 401",
    )
    break_glass_window_seconds: int = Field(
        default=3600, ge=60, le=86_400,
        description="how long after a token was issued an X-Break-Glass-Reason header is honoured (AC-02); "
        "a token without iat counts as issued max_token_lifetime_seconds before its exp",
    )
    security_enabled: bool = Field(
        default=True,
        description="Authentication, access policy and audit. false = open development/test mode: no token "
        "needed, no policy, no audit (never in production)",
    )
    jwks_path: Path | None = Field(default=None, description="JWKS file of the identity provider")
    jwks_url: str | None = Field(default=None, description="JWKS URL of the identity provider")
    token_issuer: str | None = None
    token_audience: str | None = None
    dev_tokens: bool = Field(
        default=True,
        description="Trust tokens from `kzfhir token` (local development key) when no JWKS is configured; "
        "never with env=production",
    )
    dev_key_path: Path = Field(default=Path("data/dev-jwks.json"), description="the development signing key")
    # -- built-in SMART authorization server (issue 16; docs/identity.md) --
    auth_server: bool = Field(
        default=False,
        description="the built-in SMART App Launch 2.2 authorization server at /auth (sign-in, authorization code "
        "+ PKCE, refresh, backend services): its issuer key is trusted by the resource server, and in production "
        "it counts as a configured identity provider",
    )
    auth_issuer: str | None = Field(
        default=None, description="issuer URL of the built-in authorization server; default {base_url}/auth "
        "(development without base_url: http://{host}:{port}/auth)",
    )
    auth_key_path: Path | None = Field(
        default=None, description="the authorization server's signing keys (a JWKS, mode 0600); default "
        "auth-jwks.json beside the database",
    )
    auth_database: Path | None = Field(
        default=None, description="the authorization server's users, clients, codes and refresh tokens (SQLite); "
        "default <database stem>-identity.sqlite beside the database",
    )
    auth_access_token_seconds: int = Field(
        default=600, ge=60, le=86_400,
        description="lifetime of access tokens the built-in server issues to users (capped by "
        "max_token_lifetime_seconds)",
    )
    auth_backend_token_seconds: int = Field(
        default=300, ge=60,
        description="lifetime of client-credentials (backend services) tokens; SMART allows at most 300, more "
        "is refused at start",
    )
    auth_refresh_token_seconds: int = Field(
        default=12 * 3600, ge=300, le=90 * 86_400,
        description="lifetime of refresh tokens (rotated on every use; a reused one revokes its whole chain)",
    )
    auth_allow_http: bool = Field(
        default=False,
        description="let the authorization server's issuer be plain http on a non-loopback host (tests, demos); "
        "refused with env=production, where the issuer must be https",
    )
    notify_webhook_url: str | None = Field(default=None, description="where patient notifications go (AC-18)")
    notify_webhook_secret: str | None = None
    notify_digest_seconds: int = Field(default=0, description="0: each notification at once; else per-patient digests")
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_sender: str = "kzfhir@localhost"
    cursor_secret: SecretStr | None = Field(
        default=None, description="key for sealed paging cursors; set it when several processes serve one database"
    )
    export_dir: Path | None = Field(
        default=None, description="folder of $export files (one sub-folder per job); by default `exports/` beside a "
        "SQLite file, `data/exports` for a PostgreSQL URL. With several nodes, shared storage every node mounts",
    )
    export_deidentify_secret: SecretStr | None = Field(
        default=None, description="secret for $export?_deidentify=true pseudonyms (AC-19); per-job keys derive from it"
    )
    nehp_url: str | None = Field(
        default=None, description="where NEHP messages are delivered (TM-11); unset: they stay queued"
    )
    nehp_format: str = Field(default="json", description="NEHP adapter: json | fhir-document (docs/mappings.md)")
    nehp_secret: str | None = Field(default=None, description="HMAC secret of NEHP deliveries")
    payment_url: str | None = Field(default=None, description="where payment claim lines are delivered (TM-19)")
    payment_secret: str | None = None
    calendar_override: Path | None = Field(default=None, description="operator's working-day calendar override")
    # -- EDS signatures (issue 6; docs/signing.md) --
    require_signatures: bool = Field(
        default=False, description="Document Bundles and Composition-based records must carry a valid signature"
    )
    trust_dir: Path | None = Field(default=None, description="trust store: CA certificates and CRLs (PEM/DER)")
    revocation_mode: str = Field(default="soft", description="off | soft | hard")
    ocsp_url: str | None = None
    external_verifier_url: str | None = Field(default=None, description="GOST 34.310 verifier service")
    group_commit_max_batch: int = Field(default=256, description="Write units combined into one commit at most")
    synchronous_full: bool = Field(
        default=True,
        description="SQLite synchronous=FULL: an acknowledged write survives power loss; NORMAL survives "
        "process crashes only",
    )
    read_connections: int = 4
    database_pool_size: int = Field(
        default=8, ge=1, le=1000,
        description="PostgreSQL: connections per pool (one synchronous pool for write units, search and audit "
        "queries on worker threads, one asynchronous pool for reads by id), and the worker threads",
    )
    statement_timeout_ms: int = Field(
        default=30_000, ge=0,
        description="PostgreSQL: statement_timeout of the store's connections in milliseconds (0: none)",
    )
    # -- limits (issue 12; docs/limits.md): every request does bounded work --
    max_json_depth: int = Field(default=128, description="JSON bodies nested deeper than this get 400 (orjson "
                                "writes at most 254 levels)")
    max_bundle_entries: int = Field(default=10_000, description="entries of one batch/transaction Bundle; more get 413")
    search_max_params: int = Field(default=50, description="name=value pairs in one search; more get 400 too-costly")
    search_max_values: int = Field(default=100, description="comma-separated values of one search parameter")
    search_max_value_length: int = Field(default=2048, description="characters of one search parameter name or value")
    search_max_sort_keys: int = Field(default=8, description="keys of one _sort")
    search_max_chain_depth: int = Field(default=4, description="levels of chaining and _has in one search parameter")
    search_max_included: int = Field(
        default=1000, description="_include/_revinclude resources per page; beyond it the Bundle carries a warning")
    header_timeout: float = Field(
        default=10.0, description="seconds a client has to send a request's line and headers; then 408 and close")
    body_timeout: float = Field(
        default=30.0, description="seconds a request body may pause between two chunks; then 408 and close")
    keep_alive_timeout: float = Field(default=5.0, description="seconds an idle keep-alive connection stays open")
    max_header_bytes: int = Field(default=65_536, description="request line and headers above this get 431")
    max_connections: int = Field(
        default=1000, description="open connections at most; one more is answered 503 and closed")
    max_requests_per_client: int = Field(
        default=0, description="concurrent requests of one client address (429 beyond); 0 = no limit. Behind a "
        "proxy every client has the proxy's address: keep 0 there or size it for the proxy")
    compress_responses: bool = Field(
        default=True, description="gzip/deflate responses of at least compress_min_bytes when the client accepts it")
    compress_min_bytes: int = Field(default=1024, description="smaller responses are sent uncompressed")
    # -- operations (issue 13; docs/deployment.md) --
    access_log: bool = Field(
        default=True, description="one JSON line per request on stdout (`kzfhir serve`): request id, interaction, "
        "status, time; query parameter names only, never their values (they can be personal data)")
    cors_origins: str = Field(
        default="", description="comma-separated origins browsers may call the API from (CORS), * for any; "
        "empty: no CORS headers")
    metrics: bool = Field(default=True, description="Prometheus metrics at GET /metrics (no token needed)")
    docs_page: bool = Field(default=True, description="the browsable API page at GET /docs/ (Swagger UI, no CDN)")

    @field_validator("database", mode="before")
    @classmethod
    def _database(cls, value: object) -> object:
        return database_location(value)
