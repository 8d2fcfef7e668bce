"""Shared fixtures: one test PKI per session (``signing.pki``), signers, trust stores, sample documents."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from signing import RevocationPolicy, Signer, TrustStore, init_pki, load_signer
from tests.signing.samples import make_document_bundle


@pytest.fixture(scope="session")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pki")
    init_pki(directory)
    return directory


@pytest.fixture(scope="session")
def manifest(pki_dir: Path) -> dict[str, Any]:
    return json.loads((pki_dir / "manifest.json").read_text("utf-8"))


@pytest.fixture(scope="session")
def trust(pki_dir: Path) -> TrustStore:
    return TrustStore.from_directory(pki_dir / "trust", RevocationPolicy(mode="hard"))


@pytest.fixture(scope="session")
def signer_for(pki_dir: Path) -> Callable[[str], Signer]:
    cache: dict[str, Signer] = {}

    def load(name: str) -> Signer:
        if name not in cache:
            cache[name] = load_signer(pki_dir / f"{name}.key.pem", pki_dir / f"{name}.cert.pem")
        return cache[name]

    return load


@pytest.fixture(scope="session")
def openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        pytest.skip("the openssl binary is not installed; OpenSSL interoperability cannot be checked")
    return path


@pytest.fixture
def document_bundle() -> dict[str, Any]:
    return make_document_bundle()
