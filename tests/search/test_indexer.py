"""Index extraction: the rows a resource produces, compartments, added (KZ) SearchParameters, robustness
over the R4 examples, and the time budget (issue 3: about 100 µs per typical Synthea resource)."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import pytest

from fhir_server.search import Indexer, build_registry, get_indexer
from fhir_server.search.registry import default_extra_dirs
from tests.data import load_gz, r4_example, r4_examples, synthea_bundles
from tests.search.sqlite_db import IndexedDb

IIN = "https://fhir.kzfhir.kz/sid/iin"

OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation", "id": "o1", "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2", "display": "Body height"}],
             "text": "Body height"},
    "subject": {"reference": "Patient/p1"}, "encounter": {"reference": "Encounter/e1"},
    "performer": [{"reference": "#pr"}, {"reference": "Practitioner/dr1/_history/3"}],
    "contained": [{"resourceType": "Practitioner", "id": "pr"}],
    "effectiveDateTime": "2021-03-01T09:10:00Z",
    "valueQuantity": {"value": 176.5, "unit": "cm", "system": "http://unitsofmeasure.org", "code": "cm"},
}


def test_observation_rows_cover_its_parameters() -> None:
    rows = get_indexer().extract(OBSERVATION)
    assert ("code", 0, "http://loinc.org", "8302-2", "body height") in rows.tokens
    assert not any(t[0] == "code" and t[3] is None for t in rows.tokens)  # text equal to the display: no extra row
    assert ("subject", 0, "Patient", "p1", None, None) in rows.references
    assert ("patient", 0, "Patient", "p1", None, None) in rows.references
    assert ("performer", 0, "Practitioner", "dr1", "3", None) in rows.references
    assert not any(r[3] == "pr" for r in rows.references)  # the contained practitioner is not a target
    assert ("value-quantity", 0, "http://unitsofmeasure.org", "cm", "cm", 176.5, 176.5) in rows.quantities
    assert ("Patient", "p1") in rows.compartments and ("Encounter", "e1") in rows.compartments
    assert ("Practitioner", "dr1") in rows.compartments


def test_composite_components_share_a_group() -> None:
    rows = get_indexer().extract(OBSERVATION)
    code_part = [t for t in rows.tokens if t[0] == "code-value-quantity$0"]
    value_part = [q for q in rows.quantities if q[0] == "code-value-quantity$1"]
    assert len(code_part) == 1 and len(value_part) == 1 and code_part[0][1] == value_part[0][1] > 0


def test_resource_is_in_its_own_compartment() -> None:
    patient = {"resourceType": "Patient", "id": "p9", "link": [{"other": {"reference": "Patient/p1"}}]}
    rows = get_indexer().extract(patient)
    assert set(rows.compartments) == {("Patient", "p9"), ("Patient", "p1")}


def test_no_rows_are_duplicated() -> None:
    category = {"coding": [{"system": "s", "code": "c"}]}
    doubled = {**OBSERVATION, "category": [category, category]}
    rows = get_indexer().extract(doubled)
    assert len(rows.tokens) == len(set(rows.tokens))


@pytest.mark.req("TM-04")
def test_added_kz_search_parameter_is_loaded_from_a_folder(tmp_path: Path) -> None:
    """A KZ SearchParameter is data: a JSON file in the IG package folder (architecture decision 2)."""
    sp = {"resourceType": "SearchParameter", "id": "kz-iin", "url": "https://fhir.kzfhir.kz/SearchParameter/iin",
          "name": "iin", "status": "active", "code": "iin", "base": ["Patient", "Practitioner"], "type": "token",
          "expression": f"Patient.identifier.where(system='{IIN}') | Practitioner.identifier.where(system='{IIN}')",
          "description": "Individual identification number (ИИН)"}
    (tmp_path / "SearchParameter-kz-iin.json").write_text(json.dumps(sp))
    (tmp_path / "StructureDefinition-other.json").write_text(json.dumps({"resourceType": "StructureDefinition"}))
    indexer = Indexer(build_registry(extra_dirs=[tmp_path]))
    db = IndexedDb(indexer=indexer)
    db.put({"resourceType": "Patient", "id": "a", "identifier": [{"system": IIN, "value": "850315300019"}]})
    db.put({"resourceType": "Patient", "id": "b", "identifier": [{"system": "http://other", "value": "850315300019"}]})
    db.put({"resourceType": "Practitioner", "id": "c", "identifier": [{"system": IIN, "value": "850315300019"}]})
    assert db.ids("Patient", [("iin", "850315300019")]) == {"a"}
    assert db.ids("Practitioner", [("iin", "850315300019")]) == {"c"}
    assert "iin" in indexer.searchable("Patient")


def test_default_extra_dirs_point_at_the_ig_package() -> None:
    for folder in default_extra_dirs():
        assert folder.name == "package" and folder.parent.name == "profiles"


def test_every_r4_example_is_indexed_without_error() -> None:
    indexer = get_indexer()
    total = 0
    for name in r4_examples():
        total += indexer.extract(r4_example(name)).count()
    assert total > 1000


def _synthea_sample() -> list[dict[str, Any]]:
    return [e["resource"] for e in load_gz(synthea_bundles()[0])["entry"]]


def test_extraction_fits_the_time_budget() -> None:
    """Median extraction of Synthea Observations/Encounters/Claims under 100 µs (issue 3's budget); the
    bound here is loose (x3) because the suite runs in parallel on shared cores. bench_search reports it."""
    resources = [r for r in _synthea_sample() if r["resourceType"] in ("Observation", "Encounter", "Claim")]
    indexer = get_indexer()
    for r in resources:
        indexer.extract(r)  # warm: compile each type once
    timings = []
    for r in resources:
        started = time.perf_counter()
        indexer.extract(r)
        timings.append(time.perf_counter() - started)
    assert statistics.median(timings) < 300e-6
