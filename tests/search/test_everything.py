"""``Patient/{id}/$everything`` over the patient compartment, with _since, _type, _count and paging."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from fhir_server.errors import FhirError
from fhir_server.operations import patient_everything
from fhir_server.operations.registry import OperationCall
from fhir_server.search import SearchError
from tests.search.sqlite_db import IndexedDb, open_request

BASE = "http://kzfhir.test/fhir"


async def _everything(db: IndexedDb, patient: str, params: list[tuple[str, str]]) -> dict[str, Any]:
    call = OperationCall(open_request(db, BASE), "everything", "Patient", patient, "GET", params, None)
    response = await patient_everything.everything_operation(call)
    bundle: dict[str, Any] = orjson.loads(response.body or b"{}")
    return bundle


def _found(bundle: dict[str, Any], mode: str = "match") -> set[str]:
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle.get("entry", [])
            if e["search"]["mode"] == mode}


@pytest.mark.req("AC-24")
async def test_everything_returns_the_compartment_and_what_it_references(db: IndexedDb) -> None:
    bundle = await _everything(db, "p1", [("_count", "100")])
    matches = _found(bundle)
    assert {"Patient/p1", "Observation/o1", "Observation/o2", "Observation/o7", "Encounter/e1", "Encounter/e2",
            "Condition/c1", "QuestionnaireResponse/qr1"} <= matches
    assert "Observation/o3" not in matches
    assert {"Practitioner/dr1", "Organization/org1"} <= _found(bundle, "include")
    assert bundle["total"] == len(matches)


async def test_everything_type_and_since_filters(db: IndexedDb) -> None:
    only = await _everything(db, "p1", [("_type", "Observation,Condition"), ("_count", "100")])
    assert _found(only) == {"Observation/o1", "Observation/o2", "Observation/o7", "Condition/c1"}
    later = await _everything(db, "p1", [("_since", "2100-01-01T00:00:00Z")])
    assert _found(later) == set()


@pytest.mark.req("TM-18")
async def test_everything_pages_with_links(db: IndexedDb) -> None:
    first = await _everything(db, "p1", [("_count", "3")])
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert links["self"] == f"{BASE}/Patient/p1/$everything?_count=3"
    seen = _found(first)
    url = links.get("next")
    while url:
        page = await _everything(db, "p1", parse_qsl(urlsplit(url).query))
        assert not (_found(page) & seen)
        seen |= _found(page)
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    assert len(seen) == first["total"]


async def test_everything_for_an_unknown_patient_is_404(db: IndexedDb) -> None:
    with pytest.raises(FhirError) as err:
        await _everything(db, "nobody", [])
    assert err.value.status == 404


async def test_everything_rejects_a_bad_since(db: IndexedDb) -> None:
    with pytest.raises(SearchError) as err:
        await _everything(db, "p1", [("_since", "last tuesday")])
    assert err.value.param == "_since"


async def test_everything_reports_unsupported_parameters(db: IndexedDb) -> None:
    bundle = await _everything(db, "p1", [("start", "2020-01-01")])
    outcome = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome and "start" in outcome[0]["resource"]["issue"][0]["diagnostics"]
