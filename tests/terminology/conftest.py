"""Shared fixtures: the default terminology service (R4 core + shipped data), built once per session."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from terminology import TerminologyService, default_service

ParamReader = Callable[[dict[str, Any], str], Any]


@pytest.fixture(scope="session")
def service() -> TerminologyService:
    return default_service()


def _param(parameters: dict[str, Any], name: str) -> Any:
    for p in parameters["parameter"]:
        if p["name"] == name:
            return p.get("part") or next(v for k, v in p.items() if k.startswith("value"))
    return None


@pytest.fixture(scope="session")
def param() -> ParamReader:
    """Reads the value of the first Parameters.parameter with a name (its value[x], or its parts)."""
    return _param
