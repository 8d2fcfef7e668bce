"""An independent brute-force reading of the FHIR R4 search rules, for computing expected results.

Written from the specification (search.html §3.1.1.4 prefixes, dates, numbers, strings), not from the
engine: it uses ``datetime`` and ``Decimal`` directly and shares no code with ``fhir_server.search``.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

Bounds = tuple[datetime, datetime]  # half-open [low, high)
LOWEST = datetime(1, 1, 1, tzinfo=UTC)
HIGHEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def _server_zone() -> timezone:
    """The zone the server gives values that carry none (``KZFHIR_TIMEZONE``, +05:00 by default; R4 leaves it
    to the server): the setting the app under test was created with, read when the oracle runs."""
    from fhir_server.fhirtime import zone_us

    return timezone(timedelta(microseconds=zone_us()))


def date_bounds(text: str) -> Bounds:
    """The implicit range of a FHIR date/dateTime/instant (values without a zone are in the server's zone)."""
    m = re.fullmatch(r"(\d{4})(?:-(\d\d)(?:-(\d\d)(?:T(\d\d):(\d\d)(?::(\d\d)(\.\d+)?)?(Z|[+-]\d\d:\d\d)?)?)?)?", text)
    assert m is not None, text
    year, month, day, hh, mi, ss, frac, tz = m.groups()
    zone = _server_zone()
    if month is None:
        return datetime(int(year), 1, 1, tzinfo=zone), datetime(int(year) + 1, 1, 1, tzinfo=zone)
    if day is None:
        start = datetime(int(year), int(month), 1, tzinfo=zone)
        end = datetime(int(year) + (month == "12"), int(month) % 12 + 1, 1, tzinfo=zone)
        return start, end
    if hh is None:
        start = datetime(int(year), int(month), int(day), tzinfo=zone)
        return start, start + timedelta(days=1)
    offset = (zone.utcoffset(None) or timedelta(0)) if not tz else timedelta(0)
    if tz and tz != "Z":
        offset = timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6])) * (1 if tz[0] == "+" else -1)
    start = datetime(int(year), int(month), int(day), int(hh), int(mi), int(ss or 0), tzinfo=UTC) - offset
    if ss is None:
        return start, start + timedelta(minutes=1)
    if not frac:
        return start, start + timedelta(seconds=1)
    digits = frac[1:7]
    start += timedelta(microseconds=int(digits.ljust(6, "0")))
    return start, start + timedelta(microseconds=10 ** (6 - len(digits)))


def period_bounds(period: dict[str, Any]) -> Bounds:
    low = date_bounds(period["start"])[0] if "start" in period else LOWEST
    high = date_bounds(period["end"])[1] if "end" in period else HIGHEST
    return low, high


def range_match(prefix: str, target: tuple[Any, Any], search: tuple[Any, Any]) -> bool:
    """R4 prefix table over half-open ranges: target [tl, th), search value [sl, sh)."""
    tl, th = target
    sl, sh = search
    contained = sl <= tl and th <= sh
    return {
        "eq": contained,
        "ne": not contained,
        "gt": th > sh,
        "lt": tl < sl,
        "ge": th > sh or contained,
        "le": tl < sl or contained,
        "sa": tl >= sh,
        "eb": th <= sl,
    }[prefix]


def split_prefix(value: str) -> tuple[str, str]:
    if value[:2] in ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap") and len(value) > 2:
        return value[:2], value[2:]
    return "eq", value


def date_matches(target: Bounds, search_value: str) -> bool:
    prefix, text = split_prefix(search_value)
    return range_match(prefix, target, date_bounds(text))


def number_matches(value: float, search_value: str) -> bool:
    """A stored number is a point; eq/ne use the search value's significant-figure range."""
    prefix, text = split_prefix(search_value)
    d = Decimal(text)
    exponent = d.as_tuple().exponent
    assert isinstance(exponent, int)
    half = Decimal(5) * Decimal(10) ** (exponent - 1)
    x = Decimal(str(value))
    inside = d - half <= x < d + half
    return {
        "eq": inside, "ne": not inside, "gt": x > d, "lt": x < d, "ge": x >= d, "le": x <= d,
        "sa": x > d, "eb": x < d, "ap": abs(x - d) <= abs(d) / 10,
    }[prefix]


def fold(text: str) -> str:
    """Case- and accent-insensitive form (decompose, drop combining marks, case-fold)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).casefold().split())


def string_matches(values: list[str], search_value: str, modifier: str | None = None) -> bool:
    if modifier == "exact":
        return search_value in values
    if modifier == "contains":
        return any(fold(search_value) in fold(v) for v in values)
    return any(fold(v).startswith(fold(search_value)) for v in values)


def name_parts(resource: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for name in resource.get("name", []):
        out.extend(p for p in [name.get("text"), name.get("family")] if p)
        for key in ("given", "prefix", "suffix"):
            out.extend(name.get(key, []))
    return out


def codings(concept: dict[str, Any] | None) -> list[tuple[str | None, str | None]]:
    return [(c.get("system"), c.get("code")) for c in (concept or {}).get("coding", [])]


def token_matches(pairs: list[tuple[str | None, str | None]], search_value: str) -> bool:
    if "|" not in search_value:
        return any(code == search_value for _, code in pairs)
    system, code = search_value.split("|", 1)
    if not system:
        return any(s is None and c == code for s, c in pairs)
    if not code:
        return any(s == system for s, _ in pairs)
    return (system, code) in pairs


def ids(resources: list[dict[str, Any]], predicate: Any) -> set[str]:
    return {r["id"] for r in resources if predicate(r)}
