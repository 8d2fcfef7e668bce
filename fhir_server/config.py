"""Settings in one place (pydantic-settings): environment variables prefixed ``KZFHIR_``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

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
    workers: int = Field(default=1, ge=1, le=64, description="server processes of `kzfhir serve` sharing its "
                         "port; more than 1 needs a PostgreSQL database (SQLite is single-process)")
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
    write_validation: str = Field(
        default="standard", pattern="^(strict|standard|lenient)$",
        description="How writes judge a resource (docs/validation.md, Strict and lenient). standard: as "
        "$validate, every invariant and Bundle rule included, except that extensions nobody defines, RESTful "
        "fullUrls naming another id and the cardinality inside known extensions of unprofiled resources are "
        "warnings, and the vital-signs profiles implied by an Observation's code are not imposed (what Synthea, "
        "US Core and MIS systems send stays loadable); strict: exactly as $validate; lenient: structure, "
        "reference types, known extensions and declared profiles only, no invariants of unprofiled resources",
    )
    validate_invariants_on_write: bool | None = Field(
        default=None, description="Deprecated, use write_validation: true = strict, false = lenient",
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
    auth_signin_max_failures_per_user: int = Field(
        default=5, ge=1,
        description="failed sign-ins for one username within the window before that username is refused (429)",
    )
    auth_signin_max_failures_per_ip: int = Field(
        default=30, ge=1, description="failed sign-ins from one client IP within the window before it is refused",
    )
    auth_signin_failure_window_seconds: int = Field(
        default=900, ge=10, description="the window in which failed sign-ins are counted",
    )
    auth_eds_signin: bool = Field(
        default=False, description="EDS-certificate sign-in: the person signs a server challenge with their NCA "
        "authentication certificate (CMS); needs a trust store (auth_eds_trust_dir or trust_dir)",
    )
    auth_eds_trust_dir: Path | None = Field(
        default=None, description="CA certificates and CRLs trusted for EDS sign-in; default trust_dir",
    )
    auth_eds_revocation_mode: str = Field(
        default="hard", description="revocation checking of EDS sign-in certificates: off | soft | hard",
    )
    auth_oidc_issuer: str | None = Field(
        default=None, description="an external OpenID Connect provider to sign in with (the national eGov "
        "IdP): its issuer URL, read through its discovery document",
    )
    auth_oidc_client_id: str | None = Field(default=None, description="this server's client_id at that provider")
    auth_oidc_client_secret: SecretStr | None = Field(
        default=None, description="this server's client secret at that provider (client_secret_basic)",
    )
    auth_oidc_iin_claim: str = Field(
        default="iin", description="the id_token claim holding the person's IIN ('sub' when the subject is it)",
    )
    auth_oidc_title: str = Field(default="eGov", description="the provider's name on the sign-in page")
    # -- the patient's cabinet and the organisation's console in the browser (issue 17; docs/portal.md) --
    portal: bool = Field(
        default=False, description="the web portal at /portal: a client of this server's own API that signs people "
        "in through the built-in authorization server (needs auth_server)",
    )
    portal_session_idle_seconds: int = Field(
        default=900, ge=60, le=86_400, description="a portal session ends after this long without a request",
    )
    portal_session_max_seconds: int = Field(
        default=8 * 3600, ge=300, le=7 * 86_400,
        description="a portal session ends this long after sign-in, however busy",
    )
    portal_ncalayer_url: str = Field(
        default="wss://127.0.0.1:13579", description="NCALayer's local WebSocket, which the consent signing page's "
        "script asks for the signature (ws:// or wss:// on a loopback address; empty: no script, the person pastes "
        "the CMS)",
    )
    notify_webhook_url: str | None = Field(default=None, description="where patient notifications go (AC-18)")
    notify_webhook_secret: str | None = None
    notify_digest_seconds: int = Field(default=0, description="0: each notification at once; else per-patient digests")
    # -- consent via the e-government portal cabinet (AC-06; telemed/egov_cabinet.py, docs/consultation.md) --
    egov_cabinet_secret: SecretStr | None = Field(
        default=None, description="HMAC secret shared with the e-government cabinet adapter: signs the consent "
        "messages it sends to Consent/$egov-consent and the receipts sent back; unset: the operation is off")
    egov_cabinet_url: str | None = Field(
        default=None, description="where receipts of cabinet consents go (AC-06); unset: they stay queued")
    egov_cabinet_max_age_seconds: int = Field(
        default=600, ge=10, le=86_400, description="a cabinet consent message issued longer ago is refused (replay)")
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_sender: str = "kzfhir@localhost"
    cursor_secret: SecretStr | None = Field(
        default=None, description="key for sealed paging cursors; unset: each SQLite server draws its own, and a "
        "PostgreSQL database keeps one drawn by its first server (search/cursor_key.py)"
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
    nehp_auto_submit: bool = Field(
        default=False, description="a remote-service Encounter that becomes finished is built into its NEHP record "
        "and claim line and queued without $nehp-submit (TM-11, TM-19; jobs/nehp_delivery.py)")
    calendar_override: Path | None = Field(default=None, description="operator's working-day calendar override")
    # -- remote consultations (issue 19; docs/consultation.md) --
    video_service_url: str | None = Field(
        default=None, description="base URL of the telecom (video/chat) service's session API (TM-20); unset: "
        "Encounter/$consultation-start is refused")
    video_service_token: SecretStr | None = Field(
        default=None, description="bearer token the server presents to the telecom service")
    video_service_name: str = Field(
        default="video", description="the telecom service's name recorded on the consultation Encounter")
    video_service_timeout: float = Field(default=10.0, gt=0, le=120, description="seconds per call to it")
    attachment_max_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1,
        description="decoded size of one inline attachment (Communication, DocumentReference, Media, Binary); "
        "larger ones get 413 (TM-02)")
    attachment_media_types: str = Field(
        default="image/jpeg,image/png,image/gif,image/webp,image/heic,application/pdf,text/plain,application/dicom,"
        "audio/mpeg,audio/ogg,video/mp4,video/webm",
        description="comma-separated media types an attachment may have (TM-02); others get 415")
    attachment_scanner: str | None = Field(
        default=None, description="virus scanner for attachments: clamd://host:port (clamd INSTREAM); unset: "
        "none")
    remote_booking_consent: bool = Field(
        default=False, description="booking a remote service (an Appointment with a telecom channel) needs the "
        "patient's active acceptance of the organisation's current public offer and informed consent to the "
        "care (TM-03, TM-07); production: true")
    # -- cross-border guard (AC-23; fhir_server/egress.py) --
    egress_allowed_hosts: str = Field(
        default="*.kz,*.қаз,*.xn--80ao21a,localhost,127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7",
        description="comma-separated destinations personal data may be sent to: host names, *.suffix, IP "
        "networks, or * for any. Configured destinations outside it refuse the start; Subscription endpoints "
        "outside it are refused (422). Default: in the country (.kz, .қаз) and the operator's own networks")
    # -- the signed access report (AC-21; fhir_server/operations/access_report.py) --
    report_signing_key: Path | None = Field(
        default=None, description="the organisation's EDS key (PEM or PKCS#12) that signs Patient/$access-report; "
        "unset: the report is not issued (501)")
    report_signing_cert: Path | None = Field(
        default=None, description="its certificate (PEM, chain after it), when the key file does not hold it")
    report_signing_password: SecretStr | None = Field(default=None, description="the key file's password")
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
    database_pool_timeout: float = Field(
        default=30.0, gt=0, le=300,
        description="PostgreSQL: seconds a request waits for a pooled connection (every connection busy); then it "
        "is answered 503 with Retry-After. While the database is known to be out of reach (a connection failed "
        "and none has worked since) the wait is 1 s",
    )
    database_transaction_pooling: bool = Field(
        default=False, description="PostgreSQL: the database URL is a pooler in transaction mode (pgbouncer "
        "pool_mode=transaction): no statement is prepared, the statement timeout is not sent at connect (set it on "
        "the role), and the change listener uses KZFHIR_DATABASE_LISTEN_URL or is off (docs/deployment.md)",
    )
    database_listen_url: str = Field(
        default="", description="PostgreSQL: a direct connection to the primary for LISTEN (cache invalidation "
        "pushed to idle processes) when the database URL is a transaction pooler; empty: the database URL, or "
        "no listener with KZFHIR_DATABASE_TRANSACTION_POOLING",
    )
    database_replicas: str = Field(
        default="", description="PostgreSQL: hot standbys that reads by id, vread, search and history may be served "
        "from, as libpq URLs separated by spaces; read-your-writes for the client that wrote, access decisions "
        "and audit on the primary (docs/postgres.md, Read replicas and failover)",
    )
    replica_max_lag_seconds: float = Field(
        default=30.0, gt=0,
        description="PostgreSQL: a replica further behind the primary than this serves no reads until it catches up",
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
    default_language: Literal["en", "ru", "kk"] = Field(
        default="en", description="language of error texts when a request's Accept-Language names none of en, ru, "
        "kk (docs/languages.md)")

    # -- Bulk Data $import (issue 14 §5; docs/bulk-import.md) --
    import_root: Path | None = Field(
        default=None, description="the only server folder $import may read NDJSON files from (inputs name paths "
        "inside it); unset: folder imports are refused and only posted NDJSON is imported")
    import_max_file_bytes: int = Field(
        default=2 * 1024 * 1024 * 1024, description="an input file (or posted NDJSON body) above this is refused")
    import_max_line_bytes: int = Field(
        default=16 * 1024 * 1024, description="an NDJSON line above this is reported as an error and skipped")
    import_max_resources: int = Field(
        default=10_000_000, description="resources one $import job imports at most; the rest is reported and skipped")
    import_chunk_size: int = Field(
        default=1000, description="resources per write unit of an $import (one store transaction each)")
    import_validation_workers: int = Field(
        default=0, description="processes (forked from the server) validating $import lines while it writes: "
        "0 = one per core, at most 4; -1 = a thread of the server process instead")
    import_max_running_jobs: int = Field(
        default=2, description="$import jobs running at once per process; more kick-offs get 429")

    @field_validator("database", mode="before")
    @classmethod
    def _database(cls, value: object) -> object:
        return database_location(value)
