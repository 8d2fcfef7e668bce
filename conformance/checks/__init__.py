"""The checks, one module per group; importing this package declares them all (registry.check)."""

from conformance.checks import (
    capability,
    kz_invalid,
    kz_valid,
    rest,
    rest_errors,
    search,
    security,
    terminology,
    transaction,
)

__all__ = [
    "capability",
    "kz_invalid",
    "kz_valid",
    "rest",
    "rest_errors",
    "search",
    "security",
    "terminology",
    "transaction",
]
