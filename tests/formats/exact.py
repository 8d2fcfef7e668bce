"""Equality that sees what ``==`` does not: JSON ``true`` is not ``1``, and ``1.50`` is not ``1.5``."""

from __future__ import annotations

from typing import Any

from fhir_server.jsonio import Decimal


def exact(value: Any) -> Any:
    """A form of a JSON value whose ``==`` compares JSON types and decimal literals."""
    if isinstance(value, Decimal):
        return ("decimal", value.text)
    if isinstance(value, bool | int | float):
        return (type(value).__name__, value)
    if isinstance(value, dict):
        return {k: exact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [exact(v) for v in value]
    return value
