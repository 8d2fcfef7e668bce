"""The compiled per-type extractors (search/extractors.py) give exactly the index rows of the generic path
(the plans interpreted by the walker): the same rows in the same order, hence the same ``n`` and composite
group numbers in the index tables — on the R4 examples, on Synthea, on random resources of every type built
from the definitions, and on examples mutated into the odd shapes JSON allows (nulls in arrays, single values
where arrays belong, other references, missing elements)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_server.search import get_indexer
from fhir_server.search.extractors import compilable
from tests.data import load_gz, r4_example, r4_examples, synthea_bundles
from tests.formats.strategies import resource

SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _same(item: dict[str, Any]) -> None:
    indexer = get_indexer()
    try:
        expected = indexer.extract_generic(item)
    except Exception as exc:  # whatever the generic path raises, the compiled one raises too
        with pytest.raises(type(exc)):
            indexer.extract(item)
        return
    assert indexer.extract(item) == expected


def test_examples_and_synthea_give_the_rows_of_the_generic_path() -> None:
    samples = [r4_example(name) for name in r4_examples()]
    samples += [e["resource"] for path in synthea_bundles()[:3] for e in load_gz(path)["entry"]]
    for item in samples:
        _same(item)


def test_nearly_every_path_is_compiled() -> None:
    """Only paths outside the compiled steps (a boolean expression) go through the walker."""
    indexer = get_indexer()
    indexer.warm()
    paths = [path for rtype in indexer._plans for plan in indexer.plans(rtype) for path in plan.paths]
    assert len(paths) > 2000
    assert sum(not compilable(path.ops) for path in paths) <= 5


@SETTINGS
@given(resource(depth=3))
def test_random_resources_give_the_rows_of_the_generic_path(item: dict[str, Any]) -> None:
    _same(item)


_NAMES = sorted(r4_examples())
_REFERENCES = ["Patient/p1", "Patient/p1/_history/2", "#c1", "urn:uuid:6f1c", "http://other.org/fhir/Encounter/e9",
               "Group/g1", "Practitioner/", "", "http://hl7.org/fhir/ValueSet/x|4.0.1", " Patient/p3 ",
               'Patient/"p4"', "Patient/p5\\", "Encounter/\u00e9", "Patient/p6\n", '"reference":"Patient/p7"']


def _nodes(node: Any, out: list[tuple[Any, Any]]) -> None:
    """(container, key or index) of every value under ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            out.append((node, key))
            _nodes(value, out)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.append((node, i))
            _nodes(value, out)


@st.composite
def mutated_example(draw: st.DrawFn) -> dict[str, Any]:
    item = copy.deepcopy(r4_example(draw(st.sampled_from(_NAMES))))
    for _ in range(draw(st.integers(1, 6))):
        spots: list[tuple[Any, Any]] = []
        _nodes(item, spots)
        spots = [(c, k) for c, k in spots if not (c is item and k in ("resourceType", "id"))]
        if not spots:
            break
        container, key = draw(st.sampled_from(spots))
        value = container[key]
        kind = draw(st.sampled_from(["drop", "null", "wrap", "unwrap", "reference", "duplicate", "scalar"]))
        if kind == "drop" and isinstance(container, dict):
            del container[key]
        elif kind == "null":
            container[key] = None
        elif kind == "wrap":
            container[key] = [value, None]
        elif kind == "unwrap" and isinstance(value, list) and value:
            container[key] = value[0]
        elif kind == "reference":
            container[key] = {"reference": draw(st.sampled_from(_REFERENCES))}
        elif kind == "duplicate" and isinstance(value, list):
            container[key] = value + value
        elif kind == "scalar":
            container[key] = draw(st.sampled_from(["2021-03-01", "x", 7, 1.5, True, "Patient/p2"]))
    return item


@SETTINGS
@given(mutated_example())
def test_mutated_examples_give_the_rows_of_the_generic_path(item: dict[str, Any]) -> None:
    _same(item)
