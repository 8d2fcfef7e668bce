"""FHIR → payment-system claim line (ФСМС: ГОБМП / ОСМС) and back to a FHIR ``Claim`` (TM-19).

``claim_line_from_record(record)`` (or ``claim_line_from_fhir(resources)``) gives a :class:`ClaimLine`
with the FHIR origin of each value; ``to_csv`` / ``to_json`` write the fund's registry rows in ``COLUMNS``
order; ``line_to_claim`` / ``claim_to_line`` convert to and from the R4 Claim the server stores.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mappings.payment.claim import claim_to_line, line_to_claim
from mappings.payment.claim_line import COLUMNS, ClaimLine, from_csv, from_json, to_csv, to_json
from mappings.payment.from_record import ClaimLineResult, claim_line_from_record
from mappings.record import build_record

__all__ = [
    "COLUMNS",
    "ClaimLine",
    "ClaimLineResult",
    "claim_line_from_fhir",
    "claim_line_from_record",
    "claim_to_line",
    "from_csv",
    "from_json",
    "line_to_claim",
    "to_csv",
    "to_json",
]


def claim_line_from_fhir(
    resources: Mapping[str, dict[str, Any]], encounter: str | None = None, *, relaxed_iin: bool = False
) -> ClaimLineResult:
    """``build_record`` then ``claim_line_from_record``."""
    return claim_line_from_record(build_record(resources, encounter, relaxed_iin=relaxed_iin))
