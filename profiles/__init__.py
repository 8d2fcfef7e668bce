"""The Kazakhstan implementation guide as data (canonical base https://fhir.kzfhir.kz).

``package/`` holds the IG resources (StructureDefinitions with generated snapshots, SearchParameters,
NamingSystems, the ImplementationGuide); ``examples/valid`` and ``examples/invalid`` hold examples, and
``examples/invalid/index.json`` names the rule each invalid example breaks. See docs/kz-ig.md.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

__all__ = ["KZ_BASE", "examples_dir", "load_package", "package_dir", "package_resources"]

KZ_BASE = "https://fhir.kzfhir.kz"


def package_dir() -> Path:
    return Path(str(resources.files("profiles").joinpath("package")))


def examples_dir() -> Path:
    return Path(str(resources.files("profiles").joinpath("examples")))


@cache
def _load() -> tuple[dict[str, Any], ...]:
    return tuple(orjson.loads(path.read_bytes()) for path in sorted(package_dir().glob("*.json")))


def load_package() -> list[dict[str, Any]]:
    """Every IG resource (parsed once per process; callers must not modify them)."""
    return list(_load())


def package_resources(resource_type: str) -> list[dict[str, Any]]:
    """The IG resources of one type, e.g. ``package_resources("SearchParameter")``."""
    return [r for r in _load() if r.get("resourceType") == resource_type]
