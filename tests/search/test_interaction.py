"""The search interaction: the searchset Bundle (links, total, entries, outcome), _summary and
_elements, compartment search (FHIR R4 search §3.1.1.2, §3.1.1.5.8-9, http.html §3.1.0.10)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from fhir_server.interactions import search
from fhir_server.search import SearchError
from tests.search.sqlite_db import IndexedDb, open_request

BASE = "http://kzfhir.test/fhir"


async def _bundle(db: IndexedDb, resource_type: str | None, params: list[tuple[str, str]], *,
                  compartment: tuple[str, str] | None = None, strict: bool = False) -> dict[str, Any]:
    body = await search.handle(open_request(db, BASE), resource_type=resource_type, params=params,
                               compartment=compartment, strict=strict)
    bundle: dict[str, Any] = orjson.loads(body)
    return bundle


def _link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((link["url"] for link in bundle["link"] if link["relation"] == relation), None)


async def test_searchset_bundle_shape(db: IndexedDb) -> None:
    bundle = await _bundle(db, "Patient", [("gender", "female"), ("_count", "1")])
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset" and bundle["total"] == 2
    (entry,) = bundle["entry"]
    assert entry["search"] == {"mode": "match"}
    assert entry["fullUrl"] == f"{BASE}/Patient/{entry['resource']['id']}"
    assert _link(bundle, "self") == f"{BASE}/Patient?gender=female&_count=1"


async def test_next_and_previous_links_page_through_results(db: IndexedDb) -> None:
    bundle = await _bundle(db, "Observation", [("_count", "5"), ("_sort", "date")])
    seen = [e["resource"]["id"] for e in bundle["entry"]]
    pages = [bundle]
    while (url := _link(bundle, "next")) is not None:
        assert url.startswith(f"{BASE}/Observation?")
        bundle = await _bundle(db, "Observation", parse_qsl(urlsplit(url).query))
        seen.extend(e["resource"]["id"] for e in bundle.get("entry", []))
        pages.append(bundle)
    assert len(seen) == len(set(seen)) == 12 and len(pages) == 3
    previous = _link(pages[-1], "previous")
    assert previous is not None
    back = await _bundle(db, "Observation", parse_qsl(urlsplit(previous).query))
    assert [e["resource"]["id"] for e in back["entry"]] == [e["resource"]["id"] for e in pages[1]["entry"]]


async def test_ignored_parameter_is_reported_in_an_outcome_entry(db: IndexedDb) -> None:
    bundle = await _bundle(db, "Patient", [("shoe-size", "42"), ("gender", "male")])
    outcome = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert len(outcome) == 1 and outcome[0]["resource"]["resourceType"] == "OperationOutcome"
    assert "shoe-size" in outcome[0]["resource"]["issue"][0]["diagnostics"]
    assert "shoe-size" not in (_link(bundle, "self") or "")


async def test_strict_handling_raises_a_400(db: IndexedDb) -> None:
    with pytest.raises(SearchError) as err:
        await _bundle(db, "Patient", [("shoe-size", "42")], strict=True)
    assert err.value.status == 400


async def test_bad_value_raises_a_400_naming_the_parameter(db: IndexedDb) -> None:
    with pytest.raises(SearchError) as err:
        await _bundle(db, "Patient", [("birthdate", "not-a-date")])
    assert err.value.outcome()["issue"][0]["expression"] == ["birthdate"]


async def test_summary_true_keeps_summary_elements_and_tags_subsetted(db: IndexedDb) -> None:
    bundle = await _bundle(db, "Patient", [("_id", "p1"), ("_summary", "true")])
    resource = bundle["entry"][0]["resource"]
    assert {"name", "gender", "birthDate", "identifier"} <= set(resource)
    assert "telecom" in resource  # Patient.telecom is a summary element in R4
    assert any(t["code"] == "SUBSETTED" for t in resource["meta"]["tag"])


async def test_summary_text_data_and_false() -> None:
    db = IndexedDb()
    db.put({"resourceType": "Patient", "id": "txt", "text": {"status": "generated", "div": "<div>x</div>"},
            "gender": "male"})
    text = (await _bundle(db, "Patient", [("_id", "txt"), ("_summary", "text")]))["entry"][0]["resource"]
    assert set(text) == {"resourceType", "id", "meta", "text"}
    data = (await _bundle(db, "Patient", [("_id", "txt"), ("_summary", "data")]))["entry"][0]["resource"]
    assert "text" not in data and data["gender"] == "male"
    full = (await _bundle(db, "Patient", [("_id", "txt"), ("_summary", "false")]))["entry"][0]["resource"]
    assert "text" in full and "tag" not in full["meta"]


async def test_summary_count_has_total_and_no_entries(db: IndexedDb) -> None:
    bundle = await _bundle(db, "Observation", [("code", "29463-7"), ("_summary", "count")])
    assert bundle["total"] == 4 and "entry" not in bundle


async def test_elements_keeps_listed_and_mandatory_elements(db: IndexedDb) -> None:
    bundle = await _bundle(db, "Observation", [("_id", "o1"), ("_elements", "subject,value")])
    resource = bundle["entry"][0]["resource"]
    # status and code are mandatory (min 1) in Observation; value[x] is named without its type.
    assert set(resource) == {"resourceType", "id", "meta", "subject", "valueQuantity", "status", "code"}
    assert any(t["code"] == "SUBSETTED" for t in resource["meta"]["tag"])


async def test_included_resources_have_include_mode(db: IndexedDb) -> None:
    bundle = await _bundle(db, "Observation", [("_id", "o1"), ("_include", "Observation:subject")])
    modes = {e["resource"]["id"]: e["search"]["mode"] for e in bundle["entry"]}
    assert modes == {"o1": "match", "p1": "include"}


@pytest.mark.req("AC-24")
async def test_compartment_search_lists_the_patients_resources(db: IndexedDb) -> None:
    bundle = await _bundle(db, "Observation", [], compartment=("Patient", "p1"))
    assert {e["resource"]["id"] for e in bundle["entry"]} == {"o1", "o2", "o7"}
    assert _link(bundle, "self") == f"{BASE}/Patient/p1/Observation"
    every = await _bundle(db, None, [("_count", "100")], compartment=("Patient", "p1"))
    found = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in every["entry"]}
    assert {("Patient", "p1"), ("Encounter", "e1"), ("Condition", "c1"), ("QuestionnaireResponse", "qr1")} <= found
    assert ("Observation", "o3") not in found and ("Practitioner", "dr1") not in found
