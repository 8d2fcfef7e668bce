"""Fixtures for the search tests: the hand-written clinic data set, indexed into a fresh SQLite database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.search.sqlite_db import IndexedDb

FIXTURES = Path(__file__).parent / "fixtures"


def load_clinic() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = orjson.loads((FIXTURES / "clinic.json").read_bytes())
    return data


@pytest.fixture(scope="module")
def clinic() -> list[dict[str, Any]]:
    return load_clinic()


@pytest.fixture(scope="module")
def db(clinic: list[dict[str, Any]]) -> IndexedDb:
    database = IndexedDb()
    for resource in clinic:
        database.put(resource)
    return database


def of_type(resources: list[dict[str, Any]], resource_type: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["resourceType"] == resource_type]
