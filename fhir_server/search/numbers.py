"""Decimal search values as ranges by significant figures (FHIR R4 search §3.1.1.4.6 number).

``100`` means ``[99.5, 100.5)`` and ``100.00`` means ``[99.995, 100.005)``: half a unit of the last
significant digit either side. For exponent forms the same rule is applied literally, so ``1e2`` is
``[50, 150)`` (the R4 page's example says ``[95, 105)``, which contradicts its own rule; see
docs/search.md).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def parse_decimal(text: str) -> tuple[float, float, float] | None:
    """``(value, low, high)`` of a decimal search value, or None when it is not a number."""
    if _NUMBER.fullmatch(text) is None:
        return None
    try:
        d = Decimal(text)
    except InvalidOperation:
        return None
    exponent = d.as_tuple().exponent
    if not isinstance(exponent, int):
        return None
    half = Decimal(5).scaleb(exponent - 1)
    return float(d), float(d - half), float(d + half)


def number_value(value: object) -> float | None:
    """A JSON number from a resource (decimal, integer ...) as a float; None for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
