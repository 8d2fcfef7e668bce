"""The chart of a monitored value (TM-12, TM-25): readings placed by their time, the times on the x axis."""

from __future__ import annotations

import re

import pytest

from fhir_server.portal import charts
from fhir_server.portal.charts import PAD, WIDTH, Series

PULSE = {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "Pulse"}


def _reading(when: str, value: float) -> dict[str, object]:
    return {"resourceType": "Observation", "code": PULSE, "effectiveDateTime": when,
            "valueQuantity": {"value": value, "unit": "/min"}}


def _dots(svg: str) -> list[float]:
    return [float(x) for x in re.findall(r'<circle cx="([0-9.]+)"', svg)]


def _ticks(svg: str) -> list[str]:
    return re.findall(r'text-anchor="(?:start|middle|end)">([^<]+)</text>', svg)


@pytest.mark.req("TM-12")
@pytest.mark.req("TM-25")
def test_readings_of_one_day_are_placed_by_their_time_with_the_clock_on_the_axis():
    # given out of order, in two zones: 08:00, 08:30 and 20:00 of one day in Almaty (UTC+05:00)
    readings = [_reading("2026-11-03T20:00:00+05:00", 80), _reading("2026-11-03T03:00:00Z", 72),
                _reading("2026-11-03T08:30:00+05:00", 131)]
    series = charts.series_of(readings, [])[0]
    assert [v for _, v in series.points] == [72, 131, 80]  # time order, not string order
    svg = charts.svg(series, "Pulse", "c")
    first, second, last = _dots(svg)
    inner = WIDTH - 2 * PAD
    assert first == PAD and last == PAD + inner
    assert second == pytest.approx(PAD + inner * 0.5 / 12, abs=0.1)  # half an hour of twelve, not the middle
    assert _ticks(svg) == ["08:00", "11:00", "14:00", "17:00", "20:00"]
    assert ">2026-11-03</text>" in svg  # the day, once


@pytest.mark.req("TM-12")
def test_readings_over_weeks_show_dates_and_within_a_week_date_and_time():
    weeks = charts.svg(Series("k", "Pulse", points=[("2026-10-01", 70.0), ("2026-11-30", 75.0)]), "t", "a")
    assert _ticks(weeks)[0] == "2026-10-01" and _ticks(weeks)[-1] == "2026-11-30"
    days = charts.svg(Series("k", "Pulse", points=[("2026-11-01T09:00:00+05:00", 70.0),
                                                   ("2026-11-03T09:00:00+05:00", 75.0)]), "t", "b")
    assert _ticks(days)[0] == "11-01 09:00" and _ticks(days)[2] == "11-02 09:00"


@pytest.mark.req("TM-12")
def test_without_a_time_for_every_reading_they_are_spaced_by_their_order():
    series = Series("k", "Pulse", points=[("", 70.0), ("2026-11-01", 71.0), ("2026-11-20", 72.0)])
    svg = charts.svg(series, "t", "x")
    xs = _dots(svg)
    assert xs[1] - xs[0] == pytest.approx(xs[2] - xs[1], abs=0.1)
    assert _ticks(svg) == []
    one_moment = charts.svg(Series("k", "P", points=[("2026-11-01T09:00:00Z", 1.0), ("2026-11-01T09:00:00Z", 2.0)]),
                            "t", "y")
    assert _ticks(one_moment) == [] and len(set(_dots(one_moment))) == 2
