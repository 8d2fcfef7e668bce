"""The policy's view of FHIR dates: closed ranges of epoch seconds, and Period checks (R4 §2.24.0.1).

A FHIR date has a precision: ``2024`` means the whole year, ``2024-03-01`` the whole day. Each value
is read as the closed range [earliest, latest] of instants it may denote, by the server's one FHIR
date parser (fhir_server/fhirtime.py: values without a zone in the server's zone, UTC+05:00 by
default), so access and search agree on when a period ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fhir_server.fhirtime import seconds_range


def instant_range(value: object) -> tuple[float, float] | None:
    """[earliest, latest] epoch seconds a FHIR date/dateTime/instant denotes; None if unparsable. The one
    FHIR date parser decides (fhir_server/fhirtime.py), zone-less values in the server's zone."""
    return seconds_range(value)


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
