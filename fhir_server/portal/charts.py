"""A monitored value against its limits, as server-rendered SVG (no script, no chart library; TM-25, TM-12).

The limits are those the monitoring uses (jobs/monitoring.py): the ``detailRange`` of an active Goal's target
whose ``measure`` is the Observation's code; failing that, the Observation's own ``referenceRange``. The chart
draws the band between the limits, the readings placed by their time (so three readings of one morning and one of
the next week are not drawn evenly spaced), with the times on the x axis, and marks a reading outside them (red,
and a bigger dot, so the difference is not carried by colour alone); the table beside it is the same data as
text."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

WIDTH, HEIGHT, PAD = 560, 200, 36
AXIS = 24  # below the plot: the times
TICKS = 5


@dataclass
class Series:
    key: str  # system|code, or the text
    label: str
    unit: str = ""
    points: list[tuple[str, float]] = field(default_factory=list)  # (when, value), in time order
    low: float | None = None
    high: float | None = None

    def outside(self, value: float) -> bool:
        return (self.low is not None and value < self.low) or (self.high is not None and value > self.high)


def code_key(concept: Any) -> str:
    if not isinstance(concept, dict):
        return ""
    for coding in concept.get("coding") or []:
        if coding.get("code"):
            return f"{coding.get('system', '')}|{coding['code']}"
    return str(concept.get("text") or "")


def concept_label(concept: Any) -> str:
    if not isinstance(concept, dict):
        return ""
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or []:
        if coding.get("display") or coding.get("code"):
            return str(coding.get("display") or coding["code"])
    return ""


def _range(rng: Any) -> tuple[float | None, float | None]:
    if not isinstance(rng, dict):
        return None, None
    low, high = (rng.get("low") or {}).get("value"), (rng.get("high") or {}).get("value")
    return (float(low) if isinstance(low, int | float) else None, float(high) if isinstance(high, int | float)
            else None)


def goal_limits(goals: list[dict[str, Any]]) -> dict[str, tuple[float | None, float | None]]:
    limits: dict[str, tuple[float | None, float | None]] = {}
    for goal in goals:
        if goal.get("lifecycleStatus") not in (None, "active", "accepted", "planned"):
            continue
        for target in goal.get("target") or []:
            key = code_key(target.get("measure"))
            low, high = _range(target.get("detailRange"))
            if key and (low is not None or high is not None):
                limits[key] = (low, high)
    return limits


def series_of(observations: list[dict[str, Any]], goals: list[dict[str, Any]]) -> list[Series]:
    limits = goal_limits(goals)
    found: dict[str, Series] = {}
    for obs in observations:
        quantity = obs.get("valueQuantity")
        if not isinstance(quantity, dict) or not isinstance(quantity.get("value"), int | float):
            continue
        key = code_key(obs.get("code"))
        series = found.setdefault(key, Series(key, concept_label(obs.get("code")), str(quantity.get("unit") or "")))
        when = str(obs.get("effectiveDateTime") or (obs.get("effectivePeriod") or {}).get("start") or
                   obs.get("issued") or "")
        series.points.append((when, float(quantity["value"])))
        if key in limits:
            series.low, series.high = limits[key]
        elif series.low is None and series.high is None and obs.get("referenceRange"):
            series.low, series.high = _range(obs["referenceRange"][0])
    for series in found.values():
        series.points.sort(key=lambda p: (_instant(p[0]) or dt.datetime.min.replace(tzinfo=dt.UTC), p[0]))
    return sorted(found.values(), key=lambda s: s.label)


def svg(series: Series, title: str, ident: str) -> str:
    """The chart: an ``<svg role="img">`` with a ``<title>`` (its accessible name)."""
    values = [v for _, v in series.points] + [x for x in (series.low, series.high) if x is not None]
    top, bottom = max(values), min(values)
    if top == bottom:
        top, bottom = top + 1, bottom - 1
    span = top - bottom
    top, bottom = top + span * 0.1, bottom - span * 0.1

    def y(value: float) -> float:
        return round(PAD / 2 + (top - value) / (top - bottom) * (HEIGHT - PAD), 1)

    xs = positions([when for when, _ in series.points])

    def x(index: int) -> float:
        return xs[index]

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT + AXIS}" role="img" '
             f'class="chart" aria-labelledby="{ident}">',
             f'<title id="{ident}">{_esc(title)}</title>',
             f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT + AXIS}" fill="#ffffff"/>']
    parts += _time_axis([when for when, _ in series.points])
    if series.low is not None or series.high is not None:
        band_top = y(series.high) if series.high is not None else PAD / 2
        band_bottom = y(series.low) if series.low is not None else HEIGHT - PAD / 2
        parts.append(f'<rect x="{PAD}" y="{band_top}" width="{WIDTH - 2 * PAD}" height="{band_bottom - band_top}" '
                     'fill="#e3f2e6"/>')
        for limit in (series.low, series.high):
            if limit is not None:
                parts.append(f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{y(limit)}" y2="{y(limit)}" stroke="#1b5e20" '
                             'stroke-dasharray="6 4"/>')
                parts.append(f'<text x="2" y="{y(limit) + 4}" font-size="11" fill="#1b5e20">{number(limit)}</text>')
    line = " ".join(f"{x(i)},{y(v)}" for i, (_, v) in enumerate(series.points))
    parts.append(f'<polyline points="{line}" fill="none" stroke="#0d47a1" stroke-width="2"/>')
    for i, (_, value) in enumerate(series.points):
        bad = series.outside(value)
        parts.append(f'<circle cx="{x(i)}" cy="{y(value)}" r="{6 if bad else 4}" '
                     f'fill="{"#b71c1c" if bad else "#0d47a1"}"/>')
    parts.append("</svg>")
    return "".join(parts)


def _instant(when: str) -> dt.datetime | None:
    """A reading's moment (a dateTime or a date; without a zone, UTC), or None when it is not one."""
    if not when:
        return None
    try:
        moment = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _span(whens: list[str]) -> tuple[list[dt.datetime], float] | None:
    """The readings' moments and the seconds between the first and the last; None when a moment is missing
    or all are the same (then the readings are spaced by their order)."""
    moments = [_instant(w) for w in whens]
    if not moments or any(m is None for m in moments):
        return None
    known = [m for m in moments if m is not None]
    seconds = (max(known) - min(known)).total_seconds()
    return (known, seconds) if seconds > 0 else None


def positions(whens: list[str]) -> list[float]:
    """The x of each reading: by its time between the first and the last reading; by its order when a reading
    has no time or all were taken at one moment."""
    inner = WIDTH - 2 * PAD
    span = _span(whens)
    if span is None:
        count = len(whens)
        return [round(PAD + (i * inner / (count - 1) if count > 1 else inner / 2), 1) for i in range(count)]
    moments, seconds = span
    first = min(moments)
    return [round(PAD + (m - first).total_seconds() / seconds * inner, 1) for m in moments]


def _time_axis(whens: list[str]) -> list[str]:
    """Ticks with the time under the plot, in the zone most readings were written in (the latest's on a tie): the
    clock time when every reading is on one day, the date and time within a week, else the date."""
    span = _span(whens)
    if span is None:
        return []
    moments, seconds = span
    offsets = [m.utcoffset() for m in moments]
    zone = max(reversed(moments), key=lambda m: offsets.count(m.utcoffset())).tzinfo
    first = min(moments)
    local = [m.astimezone(zone) for m in moments]
    pattern = "%H:%M" if len({m.date() for m in local}) == 1 else "%m-%d %H:%M" if seconds < 7 * 86400 else \
        "%Y-%m-%d"
    parts = [f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{HEIGHT - PAD / 2}" y2="{HEIGHT - PAD / 2}" '
             'stroke="#555555"/>']
    if pattern == "%H:%M":
        parts.append(f'<text x="{PAD}" y="{HEIGHT + AXIS - 2}" font-size="11" fill="#333333">'
                     f'{local[0].date().isoformat()}</text>')
    for i in range(TICKS):
        at = first + dt.timedelta(seconds=seconds * i / (TICKS - 1))
        where = round(PAD + i * (WIDTH - 2 * PAD) / (TICKS - 1), 1)
        anchor = "start" if i == 0 else "end" if i == TICKS - 1 else "middle"
        parts.append(f'<line x1="{where}" x2="{where}" y1="{HEIGHT - PAD / 2}" y2="{HEIGHT - PAD / 2 + 4}" '
                     'stroke="#555555"/>')
        parts.append(f'<text x="{where}" y="{HEIGHT - PAD / 2 + 15}" font-size="11" fill="#333333" '
                     f'text-anchor="{anchor}">{at.astimezone(zone).strftime(pattern)}</text>')
    return parts


def number(value: float) -> str:
    """72.0 as 72, 36.6 as 36.6 (a reading as it was written)."""
    return str(int(value)) if value == int(value) else str(value)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
