"""FHIR dates and times as ranges: THE date parser of the server (issue 10 §7: search, history, the
access policy, the audit and the operations all read dates here, so a Consent's ``period.end`` ends at
the same instant for access as for a search).

Every FHIR date, dateTime or instant denotes a half-open interval ``[low, high)`` of microseconds since
1970-01-01T00:00:00Z whose width is its precision (FHIR R4 search §3.1.1.4.7: ``2020`` is the whole year,
``2020-03-01T10:00`` one minute).

A value without a time zone (a date, or a dateTime an older client sent without one) is read in the
server's zone: Kazakhstan time, UTC+05:00 (the single national zone since 1 March 2024), unless
``KZFHIR_TIMEZONE`` says otherwise (``set_zone``). R4 leaves the zone of such values to the server
(datatypes §2.24.0.1); one rule for all of them is what matters.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

MIN_TIME = -(2**62)  # open start of a Period
MAX_TIME = 2**62  # open end of a Period
_EPOCH_DAYS = date(1970, 1, 1).toordinal()
_DAY_US = 86_400_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ZONE_US = 5 * 3600 * 1_000_000  # the server's zone as an offset east of UTC, in microseconds
_ZONE_TEXT = re.compile(r"([+-])(\d{2}):(\d{2})")


def set_zone(offset: str) -> None:
    """The zone of values that carry none: ``+05:00`` (the default), ``Z``/``+00:00`` for UTC ..."""
    global _ZONE_US
    if offset == "Z":
        _ZONE_US = 0
        return
    m = _ZONE_TEXT.fullmatch(offset)
    if m is None or int(m.group(2)) > 14 or int(m.group(3)) > 59:
        raise ValueError(f"a time zone offset like +05:00, not {offset!r}")
    _ZONE_US = (1 if m.group(1) == "+" else -1) * (int(m.group(2)) * 3600 + int(m.group(3)) * 60) * 1_000_000


def zone_us() -> int:
    return _ZONE_US


_DATE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
    r"(Z|[+-]\d{2}:\d{2})?)?)?)?"
)


def _days(year: int, month: int, day: int) -> int:
    return date(year, month, day).toordinal() - _EPOCH_DAYS


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def date_range(text: str) -> tuple[int, int] | None:
    """``[low, high)`` of a FHIR date/dateTime/instant string, or None when it is not one."""
    m = _DATE.fullmatch(text)
    if m is None:
        return None
    year_s, month_s, day_s, hh, mm, ss, frac, tz = m.groups()
    year = int(year_s)
    shift = _ZONE_US  # a date (no time, so no zone) starts at midnight of the server's zone
    try:
        if month_s is None:
            low = _days(year, 1, 1) * _DAY_US - shift
            high = _days(year + 1, 1, 1) * _DAY_US - shift if year < 9999 else MAX_TIME
            return low, high
        month = int(month_s)
        if day_s is None:
            ny, nm = _next_month(year, month)
            high = _days(ny, nm, 1) * _DAY_US - shift if ny <= 9999 else MAX_TIME
            return _days(year, month, 1) * _DAY_US - shift, high
        low = _days(year, month, int(day_s)) * _DAY_US
    except ValueError:
        return None
    if hh is None:
        return low - shift, low - shift + _DAY_US
    return _time_range(low, hh, mm, ss, frac, tz)


def _time_range(
    day_low: int, hh: str, mm: str, ss: str | None, frac: str | None, tz: str | None
) -> tuple[int, int] | None:
    hours, minutes = int(hh), int(mm)
    if hours > 24 or minutes > 59:
        return None
    low = day_low + (hours * 3600 + minutes * 60) * 1_000_000
    if ss is None:
        width = 60_000_000
    else:
        seconds = int(ss)
        if seconds > 60:
            return None
        low += seconds * 1_000_000
        if frac is None:
            width = 1_000_000
        else:
            digits = frac[:6]
            low += int(digits.ljust(6, "0"))
            width = 10 ** (6 - len(digits))
    if tz is None:
        low -= _ZONE_US
    elif tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        low -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60) * 1_000_000
    return low, low + width


def seconds_range(value: object) -> tuple[float, float] | None:
    """[earliest, latest] epoch seconds a FHIR date/dateTime/instant denotes (closed), or None: the
    policy's view of ``date_range`` (Consent and care-relationship periods)."""
    if not isinstance(value, str):
        return None
    found = date_range(value.strip())
    return None if found is None else (found[0] / 1e6, (found[1] - 1) / 1e6)


def format_instant(us: int) -> str:
    """An instant in the sortable text form of ``resources.last_updated`` (UTC, microseconds, Z)."""
    if us <= MIN_TIME:
        return "0000"
    if us >= MAX_TIME:
        return "9999-12-31T23:59:59.999999Z~"
    dt = _EPOCH + timedelta(microseconds=us)
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
        f".{dt.microsecond:06d}Z"
    )


def now_us() -> int:
    now = datetime.now(tz=UTC)
    return (now.toordinal() - _EPOCH_DAYS) * _DAY_US + (
        (now.hour * 3600 + now.minute * 60 + now.second) * 1_000_000 + now.microsecond
    )
