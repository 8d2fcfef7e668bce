"""Kazakhstan working-day calendar: 3-working-day deadlines of data-subject requests (AC-16/17/27)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_server.security.calendar import (
    CalendarDataError,
    WorkingCalendar,
    add_working_days,
    generate_year,
    is_working_day,
    working_deadline,
)


def test_moved_day_off_friday_3_january_2025_is_not_a_working_day() -> None:
    assert not is_working_day(date(2025, 1, 3))


def test_sunday_5_january_2025_is_an_extra_working_day() -> None:
    assert is_working_day(date(2025, 1, 5))


def test_an_instant_is_judged_by_its_kazakhstan_date() -> None:
    # 21:00 UTC on Monday 6 January 2025 is already 7 January (Orthodox Christmas) in Kazakhstan.
    assert not is_working_day(datetime(2025, 1, 6, 21, 0, tzinfo=UTC))
    assert is_working_day(datetime(2025, 1, 6, 12, 0, tzinfo=UTC))


def test_ordinary_weekend_and_weekday() -> None:
    assert not is_working_day(date(2025, 2, 8))  # Saturday
    assert is_working_day(date(2025, 2, 10))  # Monday


@pytest.mark.parametrize("day", [date(2025, 3, 21), date(2025, 3, 24), date(2025, 3, 25), date(2025, 1, 7)])
def test_nauryz_observed_days_and_orthodox_christmas_are_days_off(day: date) -> None:
    assert not is_working_day(day)


@pytest.mark.req("AC-16")
def test_request_on_20_march_2025_is_due_after_the_nauryz_days() -> None:
    # 21-25 March are off (Nauryz + observed); 26, 27, 28 March are the three working days.
    assert add_working_days(date(2025, 3, 20), 3) == date(2025, 3, 28)


@pytest.mark.req("AC-17")
def test_request_on_friday_3_january_2025_counts_the_working_sunday() -> None:
    # Sat 4 off, Sun 5 working (1), Mon 6 (2), Tue 7 Christmas off, Wed 8 (3).
    assert add_working_days(date(2025, 1, 3), 3) == date(2025, 1, 8)


@pytest.mark.req("AC-27")
def test_aware_instant_is_judged_by_the_kazakhstan_date() -> None:
    # 20:00 UTC on 19 March is 01:00 on 20 March in Kazakhstan (UTC+5).
    received = datetime(2025, 3, 19, 20, 0, tzinfo=UTC)
    assert add_working_days(received, 3) == date(2025, 3, 28)
    # 18:00 UTC is still 19 March locally: 20 March (1), then 26 (2) and 27 (3) after Nauryz.
    assert add_working_days(datetime(2025, 3, 19, 18, 0, tzinfo=UTC), 3) == date(2025, 3, 27)


@pytest.mark.req("AC-16")
def test_deadline_is_the_end_of_the_due_day_in_kazakhstan_time() -> None:
    end = working_deadline(date(2025, 3, 20), 3)
    assert end.date() == date(2025, 3, 28)
    assert end.utcoffset() == timedelta(hours=5)
    assert (end.hour, end.minute) == (23, 59)


def test_zero_working_days_is_the_day_of_receipt_and_negative_is_refused() -> None:
    assert add_working_days(date(2025, 3, 22), 0) == date(2025, 3, 22)
    with pytest.raises(ValueError):
        add_working_days(date(2025, 3, 22), -1)


@pytest.mark.req("AC-16")
def test_operator_override_adds_a_day_off(tmp_path: Path) -> None:
    shipped = json.loads((_data_dir() / "kz-2025.json").read_text(encoding="utf-8"))
    extra = [*shipped["extra_days_off"], {"date": "2025-03-26", "name": "Regional day off"}]
    path = tmp_path / "override.json"
    path.write_text(json.dumps({"year": 2025, "extra_days_off": extra}), encoding="utf-8")
    cal = WorkingCalendar.load(path)
    assert not cal.is_working_day(date(2025, 3, 26))
    assert add_working_days(date(2025, 3, 20), 3, cal) == date(2025, 3, 31)
    assert not cal.is_working_day(date(2025, 1, 3))  # the shipped moved day is kept


def test_override_replaces_a_list_so_an_estimated_holiday_can_be_removed(tmp_path: Path) -> None:
    shipped = json.loads((_data_dir() / "kz-2026.json").read_text(encoding="utf-8"))
    kept = [h for h in shipped["holidays"] if not h.get("estimated")]
    corrected = [*kept, {"date": "2026-05-26", "name": "Kurban ait (official date)"}]
    path = tmp_path / "override.json"
    path.write_text(json.dumps({"years": [{"year": 2026, "holidays": corrected}]}), encoding="utf-8")
    cal = WorkingCalendar.load(path)
    assert cal.is_working_day(date(2026, 5, 27))
    assert not cal.is_working_day(date(2026, 5, 26))
    assert not cal.is_working_day(date(2026, 3, 24))


def test_override_with_a_date_outside_its_year_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "override.json"
    bad = [{"year": 2025, "extra_days_off": [{"date": "2024-12-31"}]}]
    path.write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(CalendarDataError):
        WorkingCalendar.load(path)


def test_year_without_shipped_data_falls_back_to_the_generator() -> None:
    cal = WorkingCalendar.load(None)
    assert not cal.is_working_day(date(2031, 1, 1))
    assert cal.is_working_day(date(2031, 1, 3))


@pytest.mark.parametrize("year", [2024, 2025])
def test_shipped_reviewed_years_match_the_generator(year: int) -> None:
    shipped = json.loads((_data_dir() / f"kz-{year}.json").read_text(encoding="utf-8"))
    generated = generate_year(year)
    for key in ("holidays", "extra_days_off", "extra_working_days"):
        assert [e["date"] for e in shipped[key]] == [e["date"] for e in generated[key]]


@pytest.mark.req("AC-16")
@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=date(2024, 1, 1), max_value=date(2027, 12, 20)), st.integers(1, 10))
def test_due_date_is_the_nth_working_day_strictly_after_receipt(received: date, n: int) -> None:
    due = add_working_days(received, n)
    assert due > received
    assert is_working_day(due)
    between = [received + timedelta(days=i) for i in range(1, (due - received).days + 1)]
    assert sum(is_working_day(d) for d in between) == n


def _data_dir() -> Path:
    import fhir_server.security.calendar as pkg

    return Path(pkg.__file__).parent / "data"
