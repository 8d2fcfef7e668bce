"""Fixtures for the server's signature integration: one test PKI per session, servers over real HTTP."""

from __future__ import annotations

import copy
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

import fhir_server.operations.verify_signature  # noqa: F401  (registers the operation for these tests)
from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.signatures import install
from signing import Signer, sign_bundle
from signing.fhir import SignatureFormat
from tests.signatures.helpers import BASE, PRACTITIONER_URN, ServerFactory, Sign
from tests.signing.conftest import pki_dir, signer_for  # one test PKI per session, shared with tests/signing

__all__ = ["pki_dir", "signer_for"]


@pytest.fixture
def server(tmp_path: Path, pki_dir: Path) -> ServerFactory:
    """``async with server(**settings) as client``: a fresh server; by default signatures are required
    and trusted against the test PKI."""
    numbers = itertools.count()

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        options: dict[str, Any] = {"database": tmp_path / f"db{next(numbers)}.sqlite",
                                   "security_enabled": False, "synchronous_full": False,
                                   "require_signatures": True, "trust_dir": pki_dir / "trust"}
        options.update(overrides)
        app = create_app(Settings(**options))
        install(app.state.services)  # idempotent: harmless once api/app.py installs it too
        async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE, timeout=60
        ) as client:
            yield client

    return start


@pytest.fixture
def sign(signer_for: Callable[[str], Signer]) -> Sign:
    """``await sign(bundle, signer="doctor", fmt="cms", who=PRACTITIONER_URN)``: a signed copy."""

    async def run(bundle: dict[str, Any], signer: str = "doctor", fmt: str = "cms",
                  who: str | dict[str, Any] = PRACTITIONER_URN) -> dict[str, Any]:
        fmt_ = cast(SignatureFormat, fmt)
        return await sign_bundle(copy.deepcopy(bundle), signer_for(signer), fmt_, who)

    return run


