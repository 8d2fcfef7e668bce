"""Date search: every prefix against values of every precision, Periods, instants and time zones
(FHIR R4 search §3.1.1.4.2 and the prefix table §3.1.1.4). The oracle computes ranges with datetime."""

from __future__ import annotations

from typing import Any

import pytest

from tests.search.conftest import of_type
from tests.search.oracle import Bounds, date_bounds, date_matches, ids, period_bounds
from tests.search.sqlite_db import IndexedDb

PREFIXES = ["", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"]
VALUES = ["1985", "1985-03", "1985-03-15", "1990-01-01", "1985-03-15T12:00:00Z", "2000-06-15T23:30:00+06:00"]


def _birth(p: dict[str, Any]) -> Bounds | None:
    return date_bounds(p["birthDate"]) if "birthDate" in p else None


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("value", VALUES)
def test_birthdate_prefixes_follow_implicit_ranges(
    db: IndexedDb, clinic: list[dict[str, Any]], prefix: str, value: str
) -> None:
    patients = of_type(clinic, "Patient")
    expected = ids(patients, lambda p: (b := _birth(p)) is not None and date_matches(b, prefix + value))
    assert db.ids("Patient", [("birthdate", prefix + value)]) == expected


def _effective(o: dict[str, Any]) -> Bounds | None:
    for key in ("effectiveDateTime", "effectiveInstant"):
        if key in o:
            return date_bounds(o[key])
    return period_bounds(o["effectivePeriod"]) if "effectivePeriod" in o else None


@pytest.mark.parametrize("query", ["2021", "ge2021-03-01", "lt2020", "2018-06", "eq2018-05-01", "sa2019-12-31",
                                   "eb2018-05-15", "ne2021-03-01", "le2019-11-15", "gt2023-01-05T08:00:00.250Z",
                                   "2020-01-16T04:00:00Z", "2020-01-16"])
def test_observation_date_over_datetimes_periods_and_instants(
    db: IndexedDb, clinic: list[dict[str, Any]], query: str
) -> None:
    observations = of_type(clinic, "Observation")
    expected = ids(observations, lambda o: (b := _effective(o)) is not None and date_matches(b, query))
    assert db.ids("Observation", [("date", query)]) == expected


def test_open_ended_period_extends_to_the_future(db: IndexedDb) -> None:
    # e2 started 2022-07-10 (+06:00) and has no end: it overlaps every later date (R4 §2.24.0.10 Period).
    assert "e2" in db.ids("Encounter", [("date", "ge2030-01-01")])
    assert "e2" not in db.ids("Encounter", [("date", "lt2022-07-09")])
    assert db.ids("Encounter", [("date", "eq2022-07")]) == set()


def test_time_zone_offsets_are_normalised(db: IndexedDb) -> None:
    # o3 is 2020-01-16T10:00:00+06:00, i.e. 04:00 UTC.
    assert "o3" in db.ids("Observation", [("date", "2020-01-16T04:00:00Z")])
    assert "o3" not in db.ids("Observation", [("date", "2020-01-16T10:00:00Z")])


def test_approximate_date_includes_values_near_the_search_value(db: IndexedDb) -> None:
    near = db.ids("Patient", [("birthdate", "ap1985-03-15")])
    assert {"p1", "p4"} <= near  # the day itself, and the month containing it
    assert "p8" not in near  # 2000 is far more than 10% of the distance to now away


def test_last_updated_is_searched_on_the_stored_instant(db: IndexedDb) -> None:
    everything = db.ids("Patient", [("_lastUpdated", "ge2024-01-01")])
    assert len(everything) == 8
    assert db.ids("Patient", [("_lastUpdated", "lt2024-01-01")]) == set()
    assert db.ids("Patient", [("_lastUpdated", "gt2030-01-01")]) == set()
