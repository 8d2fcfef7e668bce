"""Result control: _sort, _count + keyset paging (stable under concurrent writes), _total, _include /
_revinclude (:iterate, *), _type (FHIR R4 search §3.1.1.5)."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.search import SearchResult
from tests.search.conftest import load_clinic, of_type
from tests.search.oracle import date_bounds
from tests.search.sqlite_db import IndexedDb


def _ids(result: SearchResult, mode: str = "match") -> list[str]:
    return [m.resource_id for m in result.matches if m.mode == mode]


def _walk(db: IndexedDb, resource_type: str, params: list[tuple[str, str]]) -> list[str]:
    """Follow next cursors from the first page to the last."""
    out: list[str] = []
    result = db.search(resource_type, params)
    out.extend(_ids(result))
    while result.next_cursor:
        result = db.search(resource_type, [*params, ("_cursor", result.next_cursor)])
        out.extend(_ids(result))
    return out


def test_sort_by_birthdate_descending_then_family(db: IndexedDb, clinic: list[dict[str, Any]]) -> None:
    patients = [p for p in of_type(clinic, "Patient") if "birthDate" in p]
    expected = sorted(patients, key=lambda p: (-date_bounds(p["birthDate"])[1].timestamp(), p["id"]))
    result = db.search("Patient", [("_sort", "-birthdate"), ("birthdate:missing", "false")])
    assert _ids(result) == [p["id"] for p in expected]


def test_sort_by_several_keys(db: IndexedDb) -> None:
    result = db.search("Patient", [("_sort", "gender,-_id"), ("gender:missing", "false")])
    genders = {"p1": "male", "p2": "female", "p3": "male", "p4": "male", "p5": "female", "p7": "other", "p8": "unknown"}
    expected = sorted(genders, key=lambda i: (genders[i], [-ord(c) for c in i]))
    assert _ids(result) == expected


def test_resources_without_the_sort_value_come_last(db: IndexedDb) -> None:
    ascending = _ids(db.search("Patient", [("_sort", "family")]))
    descending = _ids(db.search("Patient", [("_sort", "-family")]))
    assert ascending[-1] == "p6" and descending[-1] == "p6"
    assert ascending[0] == "p8"  # "jones" < "müller" (folded) < "smith" ...


def test_paging_walks_every_match_once(db: IndexedDb, clinic: list[dict[str, Any]]) -> None:
    every = sorted(o["id"] for o in of_type(clinic, "Observation"))
    assert sorted(_walk(db, "Observation", [("_count", "5")])) == every
    assert len(_walk(db, "Observation", [("_count", "5"), ("_sort", "-date")])) == len(every)


def test_previous_cursor_returns_the_page_before(db: IndexedDb) -> None:
    params = [("_count", "3"), ("_sort", "birthdate")]
    first = db.search("Patient", params)
    second = db.search("Patient", [*params, ("_cursor", first.next_cursor or "")])
    back = db.search("Patient", [*params, ("_cursor", second.prev_cursor or "")])
    assert _ids(back) == _ids(first)
    assert back.prev_cursor is None and back.next_cursor is not None


def test_cursors_survive_concurrent_writes() -> None:
    """Creating and deleting resources between page requests neither repeats nor skips the others."""
    db = IndexedDb()
    for n in range(30):
        db.put({"resourceType": "Patient", "id": f"pt{n:02d}", "gender": "female"})
    params = [("gender", "female"), ("_count", "7")]
    seen: list[str] = []
    result = db.search("Patient", params)
    seen.extend(_ids(result))
    writes = 0
    while result.next_cursor:
        db.put({"resourceType": "Patient", "id": f"aa-new{writes}", "gender": "female"})  # sorts before every page
        db.delete("Patient", seen[0])  # already delivered
        writes += 1
        result = db.search("Patient", [*params, ("_cursor", result.next_cursor)])
        seen.extend(_ids(result))
    assert seen == [f"pt{n:02d}" for n in range(30)]


def test_total_modes(db: IndexedDb) -> None:
    weights = [("code", "29463-7"), ("_count", "1")]
    assert db.search("Observation", [*weights, ("_total", "accurate")]).total == 4
    assert db.search("Observation", [*weights, ("_total", "none")]).total is None
    estimate = db.search("Observation", [*weights, ("status", "final"), ("_total", "estimate")]).total
    assert estimate is not None and estimate >= 2
    assert db.search("Observation", weights).total == 4  # the server's default counts too


def test_total_is_carried_to_later_pages(db: IndexedDb) -> None:
    first = db.search("Observation", [("_count", "4")])
    second = db.search("Observation", [("_count", "4"), ("_cursor", first.next_cursor or "")])
    assert first.total == second.total == 12


def test_summary_count_returns_only_the_total(db: IndexedDb) -> None:
    result = db.search("Patient", [("gender", "male"), ("_summary", "count")])
    assert result.total == 3 and result.matches == ()


def test_include_follows_references_of_the_page(db: IndexedDb) -> None:
    result = db.search("Observation", [("code", "29463-7"), ("_include", "Observation:subject")])
    assert set(_ids(result, "include")) == {"p1", "p2", "p3", "p4"}
    typed = db.search("Observation", [("_id", "o10,o1"), ("_include", "Observation:subject:Group")])
    assert _ids(typed, "include") == ["g1"]


def test_include_iterate_follows_included_resources(db: IndexedDb) -> None:
    params = [("_id", "o3"), ("_include", "Observation:patient"),
              ("_include:iterate", "Patient:organization"), ("_include:iterate", "Organization:partof")]
    assert set(_ids(db.search("Observation", params), "include")) == {"p2", "org2", "org1"}
    # Without :iterate an _include only applies to the matches, so Patient:organization is ignored (warned).
    flat = [("_id", "o3"), ("_include", "Observation:patient"), ("_include", "Patient:organization")]
    assert set(_ids(db.search("Observation", flat, strict=False), "include")) == {"p2"}


def test_include_star_and_revinclude(db: IndexedDb) -> None:
    star = db.search("Encounter", [("_id", "e1"), ("_include", "*")])
    assert set(_ids(star, "include")) == {"p1", "dr1", "org1"}
    rev = db.search("Encounter", [("_id", "e1"), ("_revinclude", "Observation:encounter")])
    assert set(_ids(rev, "include")) == {"o1", "o2"}
    rev_star = db.search("Encounter", [("_id", "e1"), ("_revinclude", "*")])
    assert set(_ids(rev_star, "include")) == {"o1", "o2", "c1"}


def test_system_search_with_type(db: IndexedDb) -> None:
    result = db.search(None, [("_type", "Practitioner,Organization"), ("_count", "50")])
    assert sorted(_ids(result)) == ["dr1", "dr2", "org1", "org2"]
    everything = db.search(None, [("_count", "0")])
    assert everything.total == len(load_clinic())


def test_deleted_resources_are_not_found() -> None:
    db = IndexedDb()
    db.put({"resourceType": "Patient", "id": "gone", "gender": "male"})
    db.put({"resourceType": "Patient", "id": "kept", "gender": "male"})
    db.delete("Patient", "gone")
    assert db.ids("Patient", [("gender", "male")]) == {"kept"}
    assert db.ids("Patient", [("_id", "gone")]) == set()
    assert db.search("Patient", [("gender", "male"), ("_summary", "count")]).total == 1


def test_updated_resource_is_indexed_by_its_new_content() -> None:
    db = IndexedDb()
    db.put({"resourceType": "Patient", "id": "x", "gender": "male"})
    db.put({"resourceType": "Patient", "id": "x", "gender": "female"})
    assert db.ids("Patient", [("gender", "male")]) == set()
    assert db.ids("Patient", [("gender", "female")]) == {"x"}


@pytest.mark.parametrize("count", ["0", "1", "1000", "5000"])
def test_count_bounds_the_page(db: IndexedDb, count: str) -> None:
    result = db.search("Observation", [("_count", count)])
    assert len(_ids(result)) == min(int(count), 12)
