"""The Kazakhstan working-day calendar: weekends, public holidays, decree-moved days off and working days.

Data-subject requests must be answered within 3 working days (AC-16, AC-17, AC-27). The calendar is data
(``data/kz-<year>.json``) so an operator can correct it with an override file of the same shape when the
Government publishes its yearly decree on moved days off.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fhir_server.security.calendar.generate import generate_year

_LIST_KEYS = ("holidays", "extra_days_off", "extra_working_days")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _kazakhstan_tz() -> tzinfo:
    # Since 1 March 2024 the whole country is on UTC+5; the zone database also knows the older offsets.
    try:
        return ZoneInfo("Asia/Almaty")
    except ZoneInfoNotFoundError:
        return timezone(timedelta(hours=5), "KZ")


KZ_TZ = _kazakhstan_tz()


class CalendarDataError(ValueError):
    """A calendar file (shipped or override) does not have the documented shape."""


@dataclass(frozen=True, slots=True)
class YearRules:
    """One year: which dates are off on top of the weekend, and which weekend dates are worked."""

    year: int
    weekend: frozenset[int]
    days_off: frozenset[date]
    working_days: frozenset[date]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> YearRules:
        try:
            year = int(data["year"])
            weekend_names = data.get("weekend", ["saturday", "sunday"])
            weekend = frozenset(_WEEKDAYS.index(d.lower()) for d in weekend_names)
            off = {date.fromisoformat(e["date"]) for key in _LIST_KEYS[:2] for e in data.get(key, [])}
            work = {date.fromisoformat(e["date"]) for e in data.get("extra_working_days", [])}
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise CalendarDataError(f"bad calendar year entry: {exc}") from exc
        if any(d.year != year for d in off | work):
            raise CalendarDataError(f"calendar year {year} lists a date of another year")
        return cls(year, weekend, frozenset(off), frozenset(work))

    def is_working_day(self, day: date) -> bool:
        # A decree-declared working day wins over the weekend; a holiday or moved day off wins over a weekday.
        if day in self.working_days:
            return True
        return day.weekday() not in self.weekend and day not in self.days_off


def _shipped_years() -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for item in resources.files("fhir_server.security.calendar").joinpath("data").iterdir():
        if item.name.startswith("kz-") and item.name.endswith(".json"):
            data = json.loads(item.read_text(encoding="utf-8"))
            out[int(data["year"])] = data
    return out


def _override_years(path: Path) -> list[dict[str, Any]]:
    """An override file holds one year object, a list of them, or ``{"years": [...]}``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CalendarDataError(f"cannot read calendar override {path}: {exc}") from exc
    if isinstance(data, dict) and "years" in data:
        data = data["years"]
    years = data if isinstance(data, list) else [data]
    if not all(isinstance(y, dict) and "year" in y for y in years):
        raise CalendarDataError(f"calendar override {path}: every entry needs a 'year'")
    return years


YearData = dict[str, Any]


def merge_override(shipped: dict[int, YearData], override: list[YearData]) -> dict[int, YearData]:
    """Per year, each key present in the override replaces the shipped value; absent keys are kept.

    Replacing whole lists (rather than adding to them) lets an operator also *remove* a wrong or
    estimated date, e.g. correct an estimated Kurban ait.
    """
    merged = {y: dict(d) for y, d in shipped.items()}
    for entry in override:
        year = int(entry["year"])
        merged[year] = {**merged.get(year, {"year": year}), **entry}
    return merged


@dataclass(slots=True)
class WorkingCalendar:
    """Working-day rules per year; years without data are generated from ``holidays`` on first use."""

    years: dict[int, YearRules] = field(default_factory=dict)

    @classmethod
    def load(cls, override_path: Path | None = None) -> WorkingCalendar:
        data = _shipped_years()
        if override_path is not None:
            data = merge_override(data, _override_years(Path(override_path)))
        return cls({year: YearRules.from_json(d) for year, d in data.items()})

    def rules(self, year: int) -> YearRules:
        found = self.years.get(year)
        if found is None:
            # Unreviewed fallback for years outside the shipped data (docs/working-days.md).
            found = YearRules.from_json(generate_year(year))
            self.years[year] = found
        return found

    def is_working_day(self, day: date) -> bool:
        local = _local_day(day)  # a datetime is judged by its Kazakhstan calendar date
        return self.rules(local.year).is_working_day(local)


@cache
def default_calendar() -> WorkingCalendar:
    """The shipped calendar without overrides (process-wide)."""
    return WorkingCalendar.load(None)


def _local_day(start: datetime | date) -> date:
    if isinstance(start, datetime):
        # A timezone-aware instant is judged by the Kazakhstan calendar date; naive values are local already.
        return (start.astimezone(KZ_TZ) if start.tzinfo else start).date()
    return start


def is_working_day(d: date, cal: WorkingCalendar | None = None) -> bool:
    """True when ``d`` (a date, or an instant judged by its Kazakhstan date) is a working day in Kazakhstan."""
    return (cal or default_calendar()).is_working_day(d)


def add_working_days(start: datetime | date, n: int, cal: WorkingCalendar | None = None) -> date:
    """The due date of a request received at ``start`` that must be answered within ``n`` working days.

    Rule (AC-16, AC-17, AC-27): a request received on day D (at any time, even on a day off) is due at the
    end of the n-th working day strictly after D. ``n = 0`` gives D itself.
    """
    if n < 0:
        raise ValueError("n must be zero or positive")
    calendar = cal or default_calendar()
    day = _local_day(start)
    remaining = n
    while remaining:
        day += timedelta(days=1)
        if calendar.is_working_day(day):
            remaining -= 1
    return day


def working_deadline(start: datetime | date, n: int, cal: WorkingCalendar | None = None) -> datetime:
    """The last instant of the due day (Kazakhstan time), e.g. for ``Task.restriction.period.end``."""
    due = add_working_days(start, n, cal)
    return datetime.combine(due, time(23, 59, 59), tzinfo=KZ_TZ)
