"""Property test: index-based search agrees with a brute-force evaluator (``oracle.py``) over randomly
generated resources and queries (issue 3 "Proof")."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.search.oracle import (
    codings,
    date_bounds,
    date_matches,
    ids,
    name_parts,
    number_matches,
    period_bounds,
    string_matches,
    token_matches,
)
from tests.search.sqlite_db import IndexedDb

FAMILIES = ["Smith", "Smíth", "smithson", "Ахметов", "ахмет", "Müller", "Muller", "Қасым", "O'Neil"]
PREFIXES = ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"]
CODES = [("http://loinc.org", "8302-2"), ("http://loinc.org", "29463-7"), ("http://example.org/cs", "8302-2")]
IDENTS = [("https://fhir.kzfhir.kz/sid/iin", "850315300019"), ("http://mrn", "850315300019"), ("http://mrn", "7")]
NUMBERS = ["0.5", "1", "1.5", "9.99", "10", "10.0", "10.04", "99.5", "100", "1e2", "150"]

Predicate = Callable[[dict[str, Any]], bool]
Query = tuple[str, list[tuple[str, str]], Predicate]


@st.composite
def dates(draw: st.DrawFn, with_time: bool = True) -> str:
    year = draw(st.integers(1950, 2025))
    month = draw(st.integers(1, 12))
    day = draw(st.integers(1, 28))
    precision = draw(st.sampled_from(["y", "m", "d", "t"] if with_time else ["y", "m", "d"]))
    if precision == "y":
        return f"{year}"
    if precision == "m":
        return f"{year}-{month:02d}"
    if precision == "d":
        return f"{year}-{month:02d}-{day:02d}"
    hour, minute = draw(st.integers(0, 23)), draw(st.integers(0, 59))
    zone = draw(st.sampled_from(["Z", "+06:00", "-03:30"]))
    return f"{year}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:00{zone}"


@st.composite
def patients(draw: st.DrawFn, n: int) -> dict[str, Any]:
    p: dict[str, Any] = {"resourceType": "Patient", "id": f"p{n}"}
    if draw(st.booleans()):
        p["gender"] = draw(st.sampled_from(["male", "female", "other", "unknown"]))
    if draw(st.booleans()):
        p["birthDate"] = draw(dates(with_time=False))
    if draw(st.booleans()):
        p["name"] = [{"family": draw(st.sampled_from(FAMILIES)), "given": [draw(st.sampled_from(FAMILIES))]}]
    if draw(st.booleans()):
        system, value = draw(st.sampled_from(IDENTS))
        p["identifier"] = [{"system": system, "value": value}]
    return p


@st.composite
def observations(draw: st.DrawFn, n: int, n_patients: int) -> dict[str, Any]:
    system, code = draw(st.sampled_from(CODES))
    o: dict[str, Any] = {"resourceType": "Observation", "id": f"o{n}", "status": "final",
                         "code": {"coding": [{"system": system, "code": code}]}}
    if n_patients and draw(st.booleans()):
        o["subject"] = {"reference": f"Patient/p{draw(st.integers(0, n_patients - 1))}"}
    kind = draw(st.sampled_from(["dt", "period", "none"]))
    if kind == "dt":
        o["effectiveDateTime"] = draw(dates())
    elif kind == "period":
        period = {k: draw(dates()) for k in ("start", "end") if draw(st.booleans())}
        if period:
            o["effectivePeriod"] = period
    if draw(st.booleans()):
        o["valueQuantity"] = {"value": float(draw(st.sampled_from(NUMBERS))), "system": "http://unitsofmeasure.org",
                              "code": draw(st.sampled_from(["kg", "g"]))}
    return o


def _effective(o: dict[str, Any]) -> Any:
    if "effectiveDateTime" in o:
        return date_bounds(o["effectiveDateTime"])
    return period_bounds(o["effectivePeriod"]) if "effectivePeriod" in o else None


def _patient_queries(draw: st.DrawFn) -> Query:
    kind = draw(st.sampled_from(["birthdate", "name", "gender", "identifier"]))
    if kind == "birthdate":
        value = draw(st.sampled_from(PREFIXES)) + draw(dates())
        return "Patient", [("birthdate", value)], lambda p: (
            "birthDate" in p and date_matches(date_bounds(p["birthDate"]), value))
    if kind == "name":
        modifier = draw(st.sampled_from([None, "exact", "contains"]))
        text = draw(st.sampled_from(
            ["smi", "SMITH", "Smíth", "ахм", "АХМЕТОВ", "muller", "Müller", "қас", "o'n", "ith"]))
        name = "name" + (f":{modifier}" if modifier else "")
        return "Patient", [(name, text)], lambda p: string_matches(name_parts(p), text, modifier)
    if kind == "gender":
        value = draw(st.sampled_from(["male", "female", "other"]))
        if draw(st.booleans()):
            return "Patient", [("gender:not", value)], lambda p: p.get("gender") != value
        return "Patient", [("gender", value)], lambda p: p.get("gender") == value
    system, value = draw(st.sampled_from(IDENTS))
    token = draw(st.sampled_from([value, f"{system}|{value}", f"{system}|"]))
    return "Patient", [("identifier", token)], lambda p: token_matches(
        [(i["system"], i["value"]) for i in p.get("identifier", [])], token)


def _observation_queries(draw: st.DrawFn, by_id: dict[str, dict[str, Any]]) -> Query:
    kind = draw(st.sampled_from(["date", "quantity", "code", "chain", "subject"]))
    if kind == "date":
        value = draw(st.sampled_from(PREFIXES)) + draw(dates())
        return "Observation", [("date", value)], lambda o: (b := _effective(o)) is not None and date_matches(b, value)
    if kind == "quantity":
        number = draw(st.sampled_from([*PREFIXES, "ap"])) + draw(st.sampled_from(NUMBERS))
        unit = draw(st.sampled_from(["", "|http://unitsofmeasure.org|kg", "||g"]))
        wanted = unit.rsplit("|", 1)[-1] if unit else None
        return "Observation", [("value-quantity", number + unit)], lambda o: "valueQuantity" in o and number_matches(
            o["valueQuantity"]["value"], number) and wanted in (None, o["valueQuantity"]["code"])
    if kind == "code":
        system, code = draw(st.sampled_from(CODES))
        token = draw(st.sampled_from([code, f"{system}|{code}", f"{system}|"]))
        return "Observation", [("code", token)], lambda o: token_matches(codings(o["code"]), token)
    subject: Callable[[dict[str, Any]], dict[str, Any]] = lambda o: by_id.get(  # noqa: E731
        o.get("subject", {}).get("reference", "").removeprefix("Patient/"), {})
    if kind == "chain":
        gender = draw(st.sampled_from(["male", "female"]))
        return "Observation", [("subject:Patient.gender", gender)], lambda o: subject(o).get("gender") == gender
    target = f"p{draw(st.integers(0, 3))}"
    return "Observation", [("subject", f"Patient/{target}")], lambda o: subject(o).get("id") == target


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_index_search_agrees_with_brute_force(data: st.DataObject) -> None:
    n_patients = data.draw(st.integers(0, 8))
    pats = [data.draw(patients(n)) for n in range(n_patients)]
    obs = [data.draw(observations(n, n_patients)) for n in range(data.draw(st.integers(0, 12)))]
    db = IndexedDb()
    for resource in pats + obs:
        db.put(resource)
    by_id = {p["id"]: p for p in pats}
    for _ in range(4):
        rtype, params, predicate = (
            _patient_queries(data.draw)
            if data.draw(st.booleans()) else _observation_queries(data.draw, by_id))
        pool = pats if rtype == "Patient" else obs
        assert db.ids(rtype, [*params, ("_count", "1000")]) == ids(pool, predicate), params


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_has_agrees_with_brute_force(data: st.DataObject) -> None:
    pats = [data.draw(patients(n)) for n in range(6)]
    obs = [data.draw(observations(n, 6)) for n in range(10)]
    db = IndexedDb()
    for resource in pats + obs:
        db.put(resource)
    system, code = data.draw(st.sampled_from(CODES))
    expected = {o["subject"]["reference"].removeprefix("Patient/") for o in obs
                if "subject" in o and (system, code) in codings(o["code"])}
    assert db.ids("Patient", [("_has:Observation:subject:code", f"{system}|{code}")]) == expected
