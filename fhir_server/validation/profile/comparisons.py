"""FHIRPath ordering of date/time and Quantity values, for the invariants that compare them (per-1, rng-2).

fhirpathpy compares these as plain values and fails on Quantities ("'<=' not supported between instances of
'dict' and 'dict'"), so such invariants used to be skipped with a warning. The rules here are FHIRPath's
(N1 §5.1 "Comparison"; §2.1.20 "Date/Time precision"):

* dates and dateTimes are compared component by component, year first. When all the components both values
  have are equal and one value has more of them, the result is *empty* (unknown), so an invariant that needs
  ``start <= end`` does not hold for ``2023-06-21`` and ``2023-06-21T06:20:00Z`` — the HL7 reference validator
  reports per-1 there. Two values with a time (R4 requires seconds and a zone with a time) are compared as
  instants; seconds and their fraction are one precision.
* Quantities compare when their units agree (same UCUM code, or same unit text without a code), or after
  conversion between UCUM units of one dimension that differ by a metric prefix or a time unit; otherwise the
  result is empty.

``None`` stands for the empty result throughout.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["compare_datetimes", "compare_quantities"]

_DATETIME = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2}(?:\.\d+)?))?(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)
UCUM = "http://unitsofmeasure.org"


def _sign(difference: Decimal | int) -> int:
    return (difference > 0) - (difference < 0)


def compare_datetimes(left: Any, right: Any) -> int | None:
    """-1, 0 or 1 as ``left`` is before, at or after ``right``; None when precision makes it unknown."""
    a = _DATETIME.fullmatch(left) if isinstance(left, str) else None
    b = _DATETIME.fullmatch(right) if isinstance(right, str) else None
    if a is None or b is None:
        return None
    if a["H"] is not None and b["H"] is not None and a["tz"] and b["tz"]:
        return _sign_instants(_instant(a), _instant(b))
    for key in ("y", "m", "d", "H", "M"):
        x, y = a[key], b[key]
        if x is None or y is None:
            return 0 if x is None and y is None else None
        if x != y:
            return -1 if int(x) < int(y) else 1
    x, y = a["S"], b["S"]
    if x is None or y is None:
        return 0 if x is None and y is None else None
    return _sign(Decimal(x) - Decimal(y))


def _instant(match: re.Match[str]) -> tuple[datetime, Decimal]:
    tz = "+00:00" if match["tz"] == "Z" else match["tz"]
    seconds = Decimal(match["S"] or "0")
    whole = int(seconds)
    moment = datetime.fromisoformat(
        f"{match['y']}-{match['m']}-{match['d']}T{match['H']}:{match['M']}:{whole:02d}{tz}"
    )
    return moment, seconds - whole


def _sign_instants(a: tuple[datetime, Decimal], b: tuple[datetime, Decimal]) -> int:
    if a[0] != b[0]:
        return -1 if a[0] < b[0] else 1
    return _sign(a[1] - b[1])


# -- Quantity --------------------------------------------------------------------------------------------

_PREFIXES = {"": Decimal(1), "k": Decimal(10) ** 3, "h": Decimal(100), "da": Decimal(10), "d": Decimal("0.1"),
             "c": Decimal("0.01"), "m": Decimal("0.001"), "u": Decimal(10) ** -6, "n": Decimal(10) ** -9,
             "p": Decimal(10) ** -12}  # fmt: skip
_PREFIXABLE = ("g", "L", "l", "m", "mol", "eq", "s", "[IU]", "U")
# Time units in seconds (UCUM: mo = a/12, a = 365.25 d).
_TIME = {"s": Decimal(1), "min": Decimal(60), "h": Decimal(3600), "d": Decimal(86400), "wk": Decimal(604800),
         "a": Decimal("31557600"), "mo": Decimal("2629800")}  # fmt: skip


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return Decimal(getattr(value, "text", None) or repr(value))
    except InvalidOperation:
        return None


def _canonical(code: str) -> tuple[str, Decimal] | None:
    """(dimension, factor) of a simple UCUM unit, or None when this module does not know it."""
    if code in _TIME:
        return "time", _TIME[code]
    for base in _PREFIXABLE:
        if code.endswith(base) and code[: -len(base)] in _PREFIXES:
            dimension = "L" if base in ("L", "l") else base
            if dimension == "s":
                dimension = "time"
            return dimension, _PREFIXES[code[: -len(base)]]
    return None


def _unit(quantity: dict[str, Any]) -> tuple[str, str] | None:
    code = quantity.get("code")
    if isinstance(code, str):
        return str(quantity.get("system", "")), code
    unit = quantity.get("unit")
    return ("text", unit) if isinstance(unit, str) else None


def compare_quantities(left: Any, right: Any) -> int | None:
    """-1, 0 or 1 for two Quantity values; None when they cannot be compared (units, missing values)."""
    if not isinstance(left, dict) or not isinstance(right, dict):
        return None
    a, b = _decimal(left.get("value")), _decimal(right.get("value"))
    if a is None or b is None:
        return None
    unit_a, unit_b = _unit(left), _unit(right)
    if unit_a == unit_b:
        return _sign(a - b)
    if unit_a is None or unit_b is None or unit_a[0] != UCUM or unit_b[0] != UCUM:
        return None
    canon_a, canon_b = _canonical(unit_a[1]), _canonical(unit_b[1])
    if canon_a is None or canon_b is None or canon_a[0] != canon_b[0]:
        return None
    return _sign(a * canon_a[1] - b * canon_b[1])
