"""A write finds a resource's literal references by scanning its serialised bytes
(``compartments._scan``); that gives the membership the walk of the parsed resource gives, on the R4
examples, Synthea, random resources of every type and mutated examples (references with quotes,
backslashes, white space and non-ASCII text, embedded resources)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given

from fhir_server.jsonio import dumps
from fhir_server.search import get_indexer
from fhir_server.search.compartments import compartment_parts
from tests.data import load_gz, r4_example, r4_examples, synthea_bundles
from tests.formats.strategies import resource
from tests.search.test_extractors import SETTINGS, mutated_example


def _same(item: dict[str, Any]) -> None:
    try:
        rows = get_indexer().extract(item)
    except Exception:  # a shape validation refuses before any write: no rows
        rows = None
    try:
        expected = compartment_parts(item, rows)
    except Exception as exc:  # an embedded resource of a shape the indexer rejects: the scan raises it too
        with pytest.raises(type(exc)):
            compartment_parts(item, rows, dumps(item))
        return
    assert compartment_parts(item, rows, dumps(item)) == expected


def test_examples_and_synthea_scan_as_they_walk() -> None:
    samples = [r4_example(name) for name in r4_examples()]
    samples += [e["resource"] for path in synthea_bundles()[:3] for e in load_gz(path)["entry"]]
    for item in samples:
        _same(item)


@SETTINGS
@given(resource(depth=3))
def test_random_resources_scan_as_they_walk(item: dict[str, Any]) -> None:
    _same(item)


@SETTINGS
@given(mutated_example())
def test_mutated_examples_scan_as_they_walk(item: dict[str, Any]) -> None:
    _same(item)
