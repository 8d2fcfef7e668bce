"""FHIR date/dateTime/instant values as ranges of instants, and Period checks (R4 §2.24.0.1).

A FHIR date has a precision: ``2024`` means the whole year, ``2024-03-01`` the whole day. Each
value is therefore read as the closed range [earliest, latest] of instants it may denote, in
epoch seconds. Values without a time zone are read in Kazakhstan time (UTC+05:00, the single
national zone since 1 March 2024), the zone the server's users write in.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

LOCAL_TZ = timezone(timedelta(hours=5))

_DATE_TIME = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?P<f>\.\d+)?)?(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


def _zone(text: str | None) -> timezone:
    if text is None:
        return LOCAL_TZ
    if text == "Z":
        return UTC
    sign = 1 if text[0] == "+" else -1
    return timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:6])))


def instant_range(value: object) -> tuple[float, float] | None:
    """[earliest, latest] epoch seconds a FHIR date/dateTime/instant denotes; None if unparsable."""
    if not isinstance(value, str):
        return None
    match = _DATE_TIME.match(value.strip())
    if match is None:
        return None
    g = match.groupdict()
    try:
        year = int(g["y"])
        tz = _zone(g["tz"])
        if g["m"] is None:
            low = datetime(year, 1, 1, tzinfo=tz)
            high = datetime(year + 1, 1, 1, tzinfo=tz)
        elif g["d"] is None:
            month = int(g["m"])
            low = datetime(year, month, 1, tzinfo=tz)
            high = low + timedelta(days=calendar.monthrange(year, month)[1])
        elif g["H"] is None:
            low = datetime(year, int(g["m"]), int(g["d"]), tzinfo=tz)
            high = low + timedelta(days=1)
        else:
            seconds = int(g["S"] or 0)
            low = datetime(year, int(g["m"]), int(g["d"]), int(g["H"]), int(g["M"]), seconds, tzinfo=tz)
            fraction = float(g["f"]) if g["f"] else 0.0
            step = 1.0 if g["S"] is not None else 60.0
            return low.timestamp() + fraction, low.timestamp() + (fraction if g["f"] else step - 1e-6)
    except ValueError:
        return None
    return low.timestamp(), high.timestamp() - 1e-6


def period_covers(period: object, at: float) -> bool:
    """True when the instant ``at`` lies inside a FHIR Period (open ends are unbounded).

    A Period whose bounds cannot be read covers nothing: an unreadable limit must not widen access.
    """
    if period is None:
        return True
    if not isinstance(period, Mapping):
        return False
    start, end = period.get("start"), period.get("end")
    if start is not None:
        low = instant_range(start)
        if low is None or at < low[0]:
            return False
    if end is not None:
        high = instant_range(end)
        if high is None or at > high[1]:
            return False
    return True


def first_instant(value: Any) -> float | None:
    """The earliest instant of a date-ish element: a dateTime/instant string or a Period."""
    if isinstance(value, str):
        bounds = instant_range(value)
        return bounds[0] if bounds else None
    if isinstance(value, Mapping):
        for key in ("start", "end"):
            bounds = instant_range(value.get(key))
            if bounds:
                return bounds[0]
    return None


def utc_now() -> float:
    """The current instant in epoch seconds (one place to read the clock)."""
    return datetime.now(UTC).timestamp()


def to_instant_text(at: float) -> str:
    """An R4 ``instant`` in UTC with millisecond precision (``2025-01-02T03:04:05.678Z``)."""
    moment = datetime.fromtimestamp(at, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
