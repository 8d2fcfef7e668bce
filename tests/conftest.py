"""Shared fixtures: a fresh server (real HTTP through the ASGI transport) per test, and the shared data."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.api.app import create_app
from fhir_server.config import Settings

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
EXAMPLES = SHARED_DATA / "examples-r4"
SYNTHEA = SHARED_DATA / "synthea-r4"
BASE = "http://kzfhir.test"


def require_shared(folder: Path) -> Path:
    if not folder.is_dir():
        pytest.skip(f"shared data folder {folder} is absent (it sits beside the project in CI)")
    return folder


def synthea_bundles() -> list[Path]:
    return sorted(SYNTHEA.glob("*.json.gz")) if SYNTHEA.is_dir() else []


def load_gz(path: Path) -> Any:
    with gzip.open(path, "rb") as fh:
        return json.load(fh)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # The interaction tests run in open mode; tests/security_http runs with security on.
    return Settings(database=tmp_path / "test.sqlite", synchronous_full=False, security_enabled=False)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE, timeout=60
    ) as c:
        c.app = app  # type: ignore[attr-defined]
        yield c


@pytest.fixture
def patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "https://fhir.kzfhir.kz/sid/iin", "value": "850315300019"}],
        "name": [{"family": "Ахметов", "given": ["Ерлан", "Серикович"]}],
        "gender": "male",
        "birthDate": "1985-03-15",
    }


@pytest.fixture(scope="session")
def example_files() -> Iterator[list[Path]]:
    yield sorted(require_shared(EXAMPLES).glob("*.json"))
