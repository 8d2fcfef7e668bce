"""Shared fixtures: a fresh server (real HTTP through the ASGI transport) per test. The data the tests
use lives in the project and is read through ``tests.data``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.api.app import create_app
from fhir_server.config import Settings
from tests.pg import fresh_database, release_database, test_backend

BASE = "http://kzfhir.test"


def open_mode(request: pytest.FixtureRequest) -> bool:
    """Security is on for every test unless the test (or its module) asks for open mode with
    ``@pytest.mark.open_mode``: the FHIR-semantics suites that are about storage, search or
    validation rather than access (architecture.md decision 6: the default test client is secure)."""
    return request.node.get_closest_marker("open_mode") is not None


def test_database(tmp_path: Path, name: str) -> Path | str:
    """The store of one test: a SQLite file in ``tmp_path``, or with ``KZFHIR_TEST_BACKEND=postgres`` a
    fresh database on the tests' PostgreSQL (tests/pg.py; ``make test-postgres``)."""
    return fresh_database(published=True) if test_backend() == "postgres" else tmp_path / name


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    database = test_database(tmp_path, "test.sqlite")
    yield Settings(database=database, synchronous_full=False, security_enabled=not open_mode(request),
                   dev_key_path=tmp_path / "dev-jwks.json")
    release_database(database)


@pytest.fixture
def auth(settings: Settings) -> Callable[..., dict[str, str]]:
    """Authorization headers for a development token of the test server: ``auth("practitioner",
    "Practitioner/dr1")``, ``auth("system", bin="940140000385")``."""
    from fhir_server.security.auth import issue_dev_token

    def make(role: str, fhir_user: str | None = None, **kwargs: Any) -> dict[str, str]:
        token = issue_dev_token(role, fhir_user, key_path=settings.dev_key_path, **kwargs)
        return {"Authorization": f"Bearer {token}"}

    return make


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
