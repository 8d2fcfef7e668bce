"""Servers the kit runs against: this project's own (open, national strict, secured) built in-process,
deliberately broken ones (servers.py) and an independent one without KZ support (peer.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from conformance.identities import Minter, dev_minter
from fhir_server.api.app import create_app
from fhir_server.config import Settings
from fhir_server.security.auth import issue_dev_token
from tests.conformance.vendor import seed, vendor_records

BASE = "http://kzfhir.test"
ORG_BIN = "940140000385"


@asynccontextmanager
async def kzfhir(tmp_path: Path, **overrides: Any) -> AsyncIterator[Any]:
    """This project's server, lifespan entered, with ``overrides`` on top of open test settings."""
    fields: dict[str, Any] = {"database": tmp_path / "db.sqlite", "security_enabled": False,
                              "synchronous_full": False, "dev_key_path": tmp_path / "k.json", **overrides}
    app = create_app(Settings(**fields))
    async with app.router.lifespan_context(app):
        yield app


def minter(tmp_path: Path) -> Minter:
    """Tokens for the test identities the kit creates, signed with the server's development key."""
    return dev_minter(tmp_path / "k.json")


def system_token(tmp_path: Path) -> str:
    """A development token for an MIS back-end (role system, organisation BIN), as docs/security.md issues."""
    return issue_dev_token("system", None, bin=ORG_BIN, key_path=tmp_path / "k.json")


@pytest.fixture
async def open_server(tmp_path: Path) -> AsyncIterator[Any]:
    async with kzfhir(tmp_path) as app:
        yield app


@pytest.fixture
async def secured_server(tmp_path: Path) -> AsyncIterator[Any]:
    async with kzfhir(tmp_path, security_enabled=True, require_kz_profiles=True) as app:
        yield app


@pytest.fixture
async def vendor_server(tmp_path: Path) -> AsyncIterator[Any]:
    """kzfhir secured and national strict, holding a clinic's records (the KZ examples) that the kit's
    MIS organisation may see: what a certified deployment looks like."""
    await seed(tmp_path / "db.sqlite", tmp_path / "k.json", vendor_records(ORG_BIN))
    async with kzfhir(tmp_path, security_enabled=True, require_kz_profiles=True) as app:
        yield app
