"""Shared fixtures: one registry (R4 core + KZ IG) per test session, and the KZ terminology stand-in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fhir_server.validation.profile import ProfileRegistry
from profiles import examples_dir
from tests.profiles.kz_terminology import KzTerminology


@pytest.fixture(scope="session")
def registry() -> ProfileRegistry:
    return ProfileRegistry()


@pytest.fixture(scope="session")
def terminology() -> KzTerminology:
    return KzTerminology()


def load_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def valid_examples() -> list[Path]:
    return sorted((examples_dir() / "valid").glob("*.json"))


def invalid_index() -> dict[str, dict[str, str]]:
    return load_json(examples_dir() / "invalid" / "index.json")
