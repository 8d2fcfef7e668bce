"""The checks, one module per group; importing this package declares them all (registry.check)."""

from conformance.checks import (
    access_audit,
    access_bundles,
    access_consent,
    access_deny,
    access_ops,
    access_setup,
    capability,
    kz_invalid,
    kz_valid,
    rest,
    rest_errors,
    search,
    security,
    terminology,
    transaction,
    vendor_data,
)

__all__ = [
    "access_audit",
    "access_bundles",
    "access_consent",
    "access_deny",
    "access_ops",
    "access_setup",
    "capability",
    "kz_invalid",
    "kz_valid",
    "rest",
    "rest_errors",
    "search",
    "security",
    "terminology",
    "transaction",
    "vendor_data",
]
