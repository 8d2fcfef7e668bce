"""Settings in one place (pydantic-settings): environment variables prefixed ``KZFHIR_``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KZFHIR_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8080
    database: Path = Field(default=Path("data/kzfhir.sqlite"), description="SQLite database file")
    base_url: str | None = Field(
        default=None, description="Public base URL; derived from the request when not set"
    )
    max_body_bytes: int = Field(default=50 * 1024 * 1024, description="Request bodies above this get 413")
    allow_multiple_conditional_delete: bool = Field(
        default=False, description="Conditional delete of several matches (FHIR R4 http.html#3.1.0.7.1)"
    )
    max_conditional_delete: int = 100
    default_page_size: int = 50
    max_page_size: int = 1000
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
    group_commit_max_batch: int = Field(default=256, description="Write units combined into one commit at most")
    synchronous_full: bool = Field(
        default=True,
        description="SQLite synchronous=FULL: an acknowledged write survives power loss; NORMAL survives "
        "process crashes only",
    )
    read_connections: int = 4
