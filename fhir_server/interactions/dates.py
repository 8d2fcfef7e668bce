"""FHIR date/dateTime/instant text to UTC ranges, for ``_since`` and ``_at`` on history.

A value covers the whole period its precision implies (FHIR R4 search.html §3.1.1.4.2: ``2026-11``
is all of November). A value without a time zone is read as UTC (documented in docs/conformance.md).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from fhir_server.errors import FhirError

_DATE_RE = re.compile(
    r"(?P<y>\d{4})(-(?P<m>\d{2})(-(?P<d>\d{2})(T(?P<H>\d{2}):(?P<M>\d{2})(:(?P<S>\d{2})(?P<f>\.\d+)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)
FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _add_month(dt: datetime, months: int) -> datetime:
    y, m = divmod(dt.month - 1 + months, 12)
    return dt.replace(year=dt.year + y, month=m + 1)


def parse_range(value: str, param: str) -> tuple[datetime, datetime]:
    """[low, high) in UTC for a FHIR date, dateTime or instant."""
    match = _DATE_RE.fullmatch(value.strip())
    if not match:
        raise FhirError("invalid", f"{param}: {value[:60]!r} is not a FHIR date/dateTime", code="value",
                        expression=param)
    g = match.groupdict()
    try:
        tz = UTC
        if g["tz"] and g["tz"] != "Z":
            sign = 1 if g["tz"][0] == "+" else -1
            tz = UTC if g["tz"] == "+00:00" else _offset(sign, g["tz"][1:])
        frac = g["f"] or ""
        low = datetime(int(g["y"]), int(g["m"] or 1), int(g["d"] or 1), int(g["H"] or 0), int(g["M"] or 0),
                       int(g["S"] or 0), int((frac[1:] + "000000")[:6]) if frac else 0, tzinfo=tz)
    except ValueError as exc:
        raise FhirError("invalid", f"{param}: {value!r} is not a valid date ({exc})", code="value",
                        expression=param) from exc
    if g["m"] is None:
        high = low.replace(year=low.year + 1)
    elif g["d"] is None:
        high = _add_month(low, 1)
    elif g["H"] is None:
        high = low + timedelta(days=1)
    elif g["S"] is None:
        high = low + timedelta(minutes=1)
    elif not frac:
        high = low + timedelta(seconds=1)
    else:
        high = low + timedelta(microseconds=10 ** max(0, 6 - (len(frac) - 1)))
    return low.astimezone(UTC), high.astimezone(UTC)


def _offset(sign: int, hhmm: str) -> timezone:
    hours, minutes = int(hhmm[:2]), int(hhmm[3:5])
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def stamp(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime(FORMAT)
