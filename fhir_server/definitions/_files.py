"""Access to the R4 4.0.1 core package files shipped inside the installed package (gzip JSON)."""

from __future__ import annotations

import gzip
from functools import cache
from importlib import resources
from typing import Any

import orjson

CORE_FILES = (
    "profiles-resources",
    "profiles-types",
    "search-parameters",
    "valuesets",
    "extension-definitions",  # the 393 R4 core extension definitions
    "profiles-others",  # the 44 R4 core profiles (vitalsigns, bodytemp, bp, ...)
)


@cache
def load_core(name: str) -> dict[str, Any]:
    """Parse one core Bundle (one of :data:`CORE_FILES`). Cached: each file is read once per process."""
    if name not in CORE_FILES:
        raise ValueError(f"unknown core definitions file {name!r}")
    data = resources.files("fhir_server.definitions").joinpath("data", f"{name}.json.gz").read_bytes()
    parsed: dict[str, Any] = orjson.loads(gzip.decompress(data))
    return parsed


def core_resources(name: str, resource_type: str | None = None) -> list[dict[str, Any]]:
    """The resources of one core Bundle, optionally only those of one type."""
    out = []
    for entry in load_core(name).get("entry", []):
        res = entry.get("resource")
        if res and (resource_type is None or res.get("resourceType") == resource_type):
            out.append(res)
    return out
