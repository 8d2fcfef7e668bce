"""De-identification of FHIR resources for analytics, statistics and research exports (AC-19).

What is removed, pseudonymised, shifted and kept is listed in docs/deidentification.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fhir_server.security.deidentify._transform import Deidentifier, shift_date

__all__ = ["Deidentifier", "deidentify", "shift_date"]


def deidentify(
    resources: Iterable[dict[str, Any]],
    *,
    secret: bytes,
    date_shift_days_max: int = 365,
    keep_region: bool = False,
) -> list[dict[str, Any]]:
    """De-identify a set of resources (Bundles included) in one pass; the input is not modified.

    References between the resources keep resolving, and all dates of one patient move by the same offset,
    so intervals within a patient are preserved. With the same ``secret`` the output is the same across runs.
    """
    return Deidentifier(secret, date_shift_days_max=date_shift_days_max, keep_region=keep_region).deidentify(
        list(resources)
    )
