"""``_since`` and ``_at`` of history as UTC ranges, read by the server's one FHIR date parser
(fhir_server/fhirtime.py): a value covers its whole precision (FHIR R4 search.html §3.1.1.4.2: ``2026-11``
is all of November), and a value without a time zone is in the server's zone (docs/conformance.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fhir_server.errors import FhirError
from fhir_server.fhirtime import date_range

FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_range(value: str, param: str) -> tuple[datetime, datetime]:
    """[low, high) in UTC for a FHIR date, dateTime or instant."""
    found = date_range(value.strip())
    if found is None:
        raise FhirError("invalid", f"{param}: {value[:60]!r} is not a FHIR date/dateTime", code="value",
                        expression=param)
    low, high = found
    return _EPOCH + timedelta(microseconds=low), _EPOCH + timedelta(microseconds=min(high, _MAX_US))


_MAX_US = int((datetime(9999, 12, 31, tzinfo=UTC) - _EPOCH).total_seconds() * 1_000_000)  # below MAX_TIME


def stamp(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime(FORMAT)
