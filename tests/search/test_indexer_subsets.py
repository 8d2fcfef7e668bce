"""The indexer's partial extractions give exactly the rows the full extraction gives for the same parameters
(the policy reads a resource's clinical date through ``Indexer.dates``, not a whole extraction)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings

from fhir_server.search import get_indexer
from fhir_server.security.policy.compartment import CLINICAL_DATE_CODES
from tests.data import load_gz, r4_example, r4_examples, synthea_bundles
from tests.formats.strategies import resource

CODES = frozenset(CLINICAL_DATE_CODES)


def _expected(rows: Any, codes: frozenset[str]) -> tuple[Any, ...]:
    return tuple(row for row in rows.dates if row[0] in codes)


def test_clinical_dates_of_examples_and_synthea_match_the_full_extraction() -> None:
    indexer = get_indexer()
    samples = [r4_example(name) for name in r4_examples()]
    samples += [e["resource"] for path in synthea_bundles()[:2] for e in load_gz(path)["entry"]]
    for item in samples:
        assert indexer.dates(item, CODES) == _expected(indexer.extract(item), CODES), item.get("resourceType")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(resource(depth=3))
def test_clinical_dates_of_random_resources_match_the_full_extraction(item: dict[str, Any]) -> None:
    indexer = get_indexer()
    try:
        full = indexer.extract(item)
    except (KeyError, TypeError, ValueError):
        return  # shapes the full extraction rejects are not indexed at all; clinical_instant falls back likewise
    assert indexer.dates(item, CODES) == _expected(full, CODES)
